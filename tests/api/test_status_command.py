"""`guest-journey status` and the panel's "Estado do serviço" (issue 11, item 5): what an
operator checks first, in one block — health, workers polling, the runbook's backlogs,
the last hour's failure rate by channel, and journeys without progress."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta

from api.service_status import service_status
from communications.message_store import MessageRecord
from guest_journey.database import SessionFactory, utcnow
from guest_journey.journeys import JourneyView, Stage, Step, StepKind, StepStatus, workflow_id_for
from guest_journey.read_model import save_journey
from guest_journey.reservations import Channel, Guest
from guest_journey.settings import Settings
from tests.api.test_journey_ops import eventually
from tests.recording_sender import RecordingSender
from worker import build_worker

STATUS_TIMEOUT_SECONDS = 60


@dataclass
class Printed:
    status: int
    stdout: str
    stderr: str


async def status_command(settings: Settings, temporal_address: str = "127.0.0.1:1") -> Printed:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GUEST_JOURNEY_", "OTEL_"))}
    env.update(GUEST_JOURNEY_DATA_DIR=str(settings.data_dir), GUEST_JOURNEY_DATABASE_URL=settings.resolved_database_url,
               GUEST_JOURNEY_TEMPORAL_ADDRESS=temporal_address, GUEST_JOURNEY_TASK_QUEUE=settings.task_queue)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "commands.cli", "status", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), STATUS_TIMEOUT_SECONDS)
    assert process.returncode is not None
    return Printed(process.returncode, stdout.decode(), stderr.decode())


async def a_stuck_journey_and_a_failing_hour(sessions: SessionFactory) -> str:
    rid = f"R-STUCK-{uuid.uuid4().hex[:6]}"
    overdue = utcnow() - timedelta(hours=1)
    async with sessions() as session:
        await save_journey(session=session, view=JourneyView(
            reservation_id=rid, workflow_id=workflow_id_for(rid), hotel_id="hotel-1", stage=Stage.pre_arrival,
            guest=Guest(name="Ana Souza", email="ana@example.com"),
            arrival=utcnow() + timedelta(days=1), departure=utcnow() + timedelta(days=3),
            steps=[Step(key="checkin_invitation", kind=StepKind.checkin_invitation, status=StepStatus.due,
                        scheduled_for=overdue)],
        ))
        for status in ("sent", "failed"):
            session.add(MessageRecord(
                id=str(uuid.uuid4()), reservation_id=rid, hotel_id="hotel-1", direction="outbound", channel="email",
                template="checkin_invitation", status=status, created_at=utcnow() - timedelta(minutes=10),
            ))
        await session.commit()
    return rid


async def test_status_prints_the_block_and_exits_1_without_temporal(settings, sessions):
    rid = await a_stuck_journey_and_a_failing_hour(sessions)

    printed = await status_command(settings)

    assert printed.status == 1, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines[0].startswith("status: degraded")
    assert "database: ok" in lines
    assert any(line.startswith("temporal: unreachable: 127.0.0.1:1") for line in lines)
    assert "automation_queue.pending(): unknown" in lines
    assert "guest_journey_bridge.pending(): 0 snapshots" in lines
    assert "failure rate, last hour: email 50.0% (1 of 2)" in lines
    assert f"journeys without progress: 1 ({rid})" in lines


async def test_status_says_what_to_run_on_a_database_without_schema(settings):
    printed = await status_command(settings)

    assert printed.status == 1
    assert "database: answers, but the database has no schema yet" in printed.stdout
    assert "run `guest-journey db upgrade`" in printed.stdout


async def test_status_is_ok_once_a_worker_polls_the_task_queue(dev_env, settings, sessions):
    async def now_status():
        return await service_status(client=dev_env.client, sessions=sessions, settings=settings, now=utcnow())

    before = await now_status()
    async with build_worker(dev_env.client, settings, sessions, {Channel.email: RecordingSender(Channel.email)}):
        after = await eventually(now_status, lambda status: status.healthy, timeout=30)

    assert before.workers == [] and not before.healthy
    assert before.task_queue_backlog == 0
    assert after.temporal == "ok" and after.database == "ok"
    assert len(after.workers or []) == 1
    assert f"workers polling {settings.task_queue}: 1 " in "\n".join(after.lines())
    assert after.lines()[0].startswith("status: ok")


async def test_the_panel_shows_the_same_block(api, sessions):
    await a_stuck_journey_and_a_failing_hour(sessions)

    page = await api.get("/guest-experience", headers={"accept": "text/html"})

    assert page.status_code == 200
    assert "Estado do serviço" in page.text
    assert "automation_queue.pending()" in page.text and "guest_journey_bridge.pending()" in page.text
    assert "email 50.0% (1 de 2)" in page.text
