"""`guest-journey import FILE`, run as a user runs it, against the real Temporal dev server:
good lines start their journeys while bad ones are reported with why, and a re-run of
the same file starts nothing twice and sends nothing twice."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from commands.progress import ProgressDisplay, progress_text
from guest_journey.database import SessionFactory
from guest_journey.journeys import workflow_id_for
from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from tests.recording_sender import RecordingSender
from tests.workflows.journeys import end, recorded
from worker import build_worker

REPO = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 120.0


def line(reservation_id: str, arrival: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "reservation_id": reservation_id, "hotel_id": "hotel-1",
        "guest": {"name": "Ana Souza", "email": "ana@example.com", "language": "pt-BR"},
        "arrival": arrival.isoformat(), "departure": (arrival + timedelta(days=2)).isoformat(),
        **fields,
    }


async def run_import(settings: Settings, address: str, *args: str) -> subprocess.CompletedProcess[str]:
    policy = settings.data_dir / "policy.yaml"
    policy.write_text("quiet_hours: null\n")
    env = os.environ | {
        "PYTHONPATH": str(REPO),
        "GUEST_JOURNEY_DATA_DIR": str(settings.data_dir),
        "GUEST_JOURNEY_TEMPORAL_ADDRESS": address,
        "GUEST_JOURNEY_TASK_QUEUE": settings.task_queue,
        "GUEST_JOURNEY_POLICY_FILE": str(policy),
        "GUEST_JOURNEY_SECRET_KEY": settings.secret_key.get_secret_value(),
        "GUEST_JOURNEY_PAYLOAD_ENCRYPTION": "false",
        "GUEST_JOURNEY_PUBLIC_BASE_URL": settings.public_base_url,
    }
    if settings.database_url:
        env["GUEST_JOURNEY_DATABASE_URL"] = settings.database_url
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "commands.cli", "import", *args,
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    async with asyncio.timeout(RUN_TIMEOUT):
        out, err = await process.communicate()
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())


def report_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


async def run_ids(env: WorkflowEnvironment, ids: list[str]) -> dict[str, str | None]:
    return {rid: (await env.client.get_workflow_handle(workflow_id_for(rid)).describe()).run_id for rid in ids}


@pytest.fixture
def dev_settings(dev_env: WorkflowEnvironment, settings: Settings) -> Settings:
    return settings.model_copy(update={"temporal_address": dev_env.client.service_client.config.target_host})


async def test_jsonl_import_starts_good_lines_reports_bad_ones_and_a_rerun_changes_nothing(
    dev_env: WorkflowEnvironment, dev_settings: Settings, sessions: SessionFactory, email: RecordingSender,
    tmp_path: Path,
) -> None:
    arrival = datetime.now(UTC) + timedelta(days=2)  # the check-in invitation is due at once
    run = uuid.uuid4().hex[:6]
    good = [f"IMP{run}{n}" for n in range(3)]
    lines = [
        json.dumps(line(good[0], arrival)),
        json.dumps(line(f"BAD{run}", arrival, guest={"name": "Ana", "email": "not-an-address"})),
        json.dumps(line(good[1], arrival)),
        "{not json",
        "",
        json.dumps(line(good[2], arrival)),
        json.dumps(line(f"LATE{run}", arrival, departure=(arrival - timedelta(days=1)).isoformat())),
    ]
    file = tmp_path / "reservations.jsonl"
    file.write_text("\n".join(lines) + "\n")
    address = dev_settings.temporal_address

    async with build_worker(dev_env.client, dev_settings, sessions, {Channel.email: email}):
        first = await run_import(dev_settings, address, str(file))
        await email.wait_for(3)
        for rid in good:
            await recorded(sessions, rid)
        runs = await run_ids(dev_env, good)
        again = await run_import(dev_settings, address, str(file))
        after = await run_ids(dev_env, good)
        for rid in good:
            await end(dev_env, rid)

    assert first.returncode == 1, first.stderr  # some lines failed
    assert "3 started, 0 updated, 0 unchanged, 3 failed" in first.stdout
    failures = report_rows(tmp_path / "reservations.failed.csv")
    assert [(row["line"], row["reservation_id"]) for row in failures] == [
        ("2", f"BAD{run}"), ("4", ""), ("7", f"LATE{run}")]
    assert failures[0]["error"].startswith("guest.email: String should match pattern")
    assert failures[1]["error"].startswith("the line is not JSON")
    assert failures[2]["error"] == "line: departure must be after arrival"

    assert again.returncode == 1
    assert "0 started, 0 updated, 3 unchanged, 3 failed" in again.stdout
    assert after == runs  # no second journey
    assert sorted(email.templates()) == ["checkin_invitation"] * 3  # nothing sent twice
    for rid in good:
        description = await dev_env.client.get_workflow_handle(workflow_id_for(rid)).describe()
        assert description.status is WorkflowExecutionStatus.COMPLETED


async def test_csv_import_starts_every_row_and_a_changed_row_updates_its_journey(
    dev_env: WorkflowEnvironment, dev_settings: Settings, sessions: SessionFactory, email: RecordingSender,
    tmp_path: Path,
) -> None:
    arrival = datetime.now(UTC) + timedelta(days=20)  # nothing is due
    run = uuid.uuid4().hex[:6]
    ids = [f"CSV{run}{n}" for n in range(2)]
    header = "reservation_id,hotel_id,guest.name,guest.email,guest.preferred_channels,guest.marketing_consent,"
    header += "arrival,departure,room_type\n"

    def rows(room: str) -> str:
        return "".join(
            f"{rid},hotel-1,Ana Souza,ana@example.com,email whatsapp,true,{arrival.isoformat()},"
            f"{(arrival + timedelta(days=2)).isoformat()},{room if n == 1 else 'deluxe'}\n"
            for n, rid in enumerate(ids)
        )

    file = tmp_path / "reservations.csv"
    async with build_worker(dev_env.client, dev_settings, sessions, {Channel.email: email}):
        file.write_text(header + rows("deluxe"))
        first = await run_import(dev_settings, dev_settings.temporal_address, str(file))
        file.write_text(header + rows("suite"))
        changed = await run_import(dev_settings, dev_settings.temporal_address, str(file))
        state = await dev_env.client.get_workflow_handle(workflow_id_for(ids[1])).query("state")
        for rid in ids:
            await end(dev_env, rid)

    assert first.returncode == 0, first.stderr
    assert "2 started, 0 updated, 0 unchanged, 0 failed" in first.stdout
    assert report_rows(tmp_path / "reservations.failed.csv") == []
    assert changed.returncode == 0, changed.stderr
    assert "0 started, 1 updated, 1 unchanged, 0 failed" in changed.stdout
    assert state["room_type"] == "suite"
    assert state["guest"]["preferred_channels"] == ["email", "whatsapp"]


async def test_a_file_it_cannot_read_is_refused_in_one_line(dev_settings: Settings, tmp_path: Path) -> None:
    file = tmp_path / "reservations.csv"
    file.write_text("reservation_id,hotel,arrival\nR1,h,2030-01-01T00:00:00Z\n")
    refused = await run_import(dev_settings, "127.0.0.1:1", str(file))
    assert refused.returncode == 2
    assert "unknown column(s) 'hotel'; the columns are reservation_id, hotel_id" in refused.stderr


def test_the_progress_bar_shows_rate_and_eta_and_plain_lines_elsewhere() -> None:
    assert progress_text(250, 1000, 5.0, bar=True) == "[########----------------------] 250/1,000 25% 50/s ETA 0:15"
    assert progress_text(1000, 1000, 4.0, failed=3, bar=False) == "1,000/1,000 100% 250/s ETA 0:00, 3 failed"
    log = io.StringIO()  # not a terminal: plain lines, the last one at the end
    display = ProgressDisplay(log, 10, every=3600)
    display.update(5)
    display.finish(10, 1)
    assert log.getvalue().count("\n") == 1 and "\r" not in log.getvalue()
    assert log.getvalue().startswith("10/10 100% ") and log.getvalue().endswith(", 1 failed\n")
