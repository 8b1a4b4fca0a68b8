"""The production topology, run here (issue 11, item 2): `guest-journey db upgrade`,
two `guest-journey api` and two `python worker.py`, each a process of its own with
`GUEST_JOURNEY_ENV=production`, PostgreSQL, API keys and a secret key, against one
Temporal (the dev server stands in for the cluster). A reservation goes from its PUT
to its close through both APIs while one worker and one API are killed, and every
process's metrics are scraped at its `GUEST_JOURNEY_METRICS_ADDRESS`.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from guest_journey.journeys import JourneyView, Stage
from tests.chaos.databases import outbound_statuses
from tests.chaos.journeys import step_summary
from tests.chaos.outcomes import Outcome, broken, step_outcomes
from tests.chaos.processes import (
    WORKER_READY,
    ApiProcess,
    Processes,
    ServiceProcess,
    TemporalServerProcess,
    clean_environment,
    free_ports,
    service_command,
    wait_until,
    worker_script,
)
from tests.chaos.short_policy import HOTEL_ID, short_policy
from tests.databases import chosen_database, postgres_schema
from tests.smtp_server import SmtpTestServer

# Wide enough that the stall after the worker's kill (Temporal hands its journeys to the
# other worker after the sticky queue's timeout, some 10 s) moves no step past its stage.
LEAD, STAY, CLOSE_AFTER = timedelta(seconds=20), timedelta(seconds=20), timedelta(seconds=20)
JOURNEY_TIMEOUT = 120.0
PMS_KEY, OPS_KEY = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
MESSAGE_ID_HEADER = "X-Guest-Journey-Message-Id"
KILLED_WHILE_SENDING = {Outcome.received_once, Outcome.in_doubt_received, Outcome.in_doubt_none_received}

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def postgresql(request: pytest.FixtureRequest) -> None:
    if chosen_database(request.config) != "postgresql":
        pytest.skip("production runs on PostgreSQL only: this test runs in `pytest --database=postgresql`")


@pytest.fixture
async def temporal(tmp_path: Path) -> AsyncIterator[TemporalServerProcess]:
    port, ui_port = free_ports(2)
    server = TemporalServerProcess(port=port, ui_port=ui_port, db_file=tmp_path / "temporal.sqlite",
                                   log_dir=tmp_path / "logs")
    try:
        server.start()
        await server.wait_ready()
        yield server
    finally:
        server.kill()


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpTestServer]:
    server = SmtpTestServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def production_environment(
    *, database_url: str, temporal: TemporalServerProcess, smtp: SmtpTestServer, policy_file: Path, data_dir: Path
) -> dict[str, str]:
    env = clean_environment()
    env.update(
        GUEST_JOURNEY_ENV="production",
        GUEST_JOURNEY_DATABASE_URL=database_url,
        GUEST_JOURNEY_TEMPORAL_ADDRESS=temporal.address,
        GUEST_JOURNEY_API_KEYS=f"{PMS_KEY}:reservations,{OPS_KEY}:ops",
        GUEST_JOURNEY_SECRET_KEY=secrets.token_urlsafe(32),
        GUEST_JOURNEY_PUBLIC_BASE_URL="https://journey.hotel.example",
        GUEST_JOURNEY_SMTP_HOST="127.0.0.1",
        GUEST_JOURNEY_SMTP_PORT=str(smtp.port),
        GUEST_JOURNEY_SMTP_TLS="none",
        GUEST_JOURNEY_EMAIL_FROM="stay@hotel.example",
        GUEST_JOURNEY_POLICY_FILE=str(policy_file),
        GUEST_JOURNEY_DATA_DIR=str(data_dir),
    )
    return env


def with_ports(env: dict[str, str], *, metrics: int, api: int | None = None) -> dict[str, str]:
    ports = {"GUEST_JOURNEY_METRICS_ADDRESS": f"127.0.0.1:{metrics}"}
    if api is not None:
        ports.update(GUEST_JOURNEY_API_HOST="127.0.0.1", GUEST_JOURNEY_API_PORT=str(api))
    return {**env, **ports}


def reservation_body(arrival: datetime) -> dict[str, Any]:
    return {
        "hotel_id": HOTEL_ID,
        "guest": {"name": "Ana Souza", "email": "ana@example.com", "language": "pt-BR", "marketing_consent": True},
        "arrival": arrival.isoformat(),
        "departure": (arrival + STAY).isoformat(),
        "room_type": "standard",
    }


async def put_until_answered(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str], patience: float = 60.0
) -> httpx.Response:
    """PUT until the API answers other than 503 (or the request times out), for `patience` seconds."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        try:
            answer = await http.put(path, json=body, headers=headers)
            if answer.status_code != 503:
                return answer
        except httpx.TimeoutException:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"PUT {path} not answered within {patience:.0f} s")


async def scrape(address: str) -> str:
    async with httpx.AsyncClient(timeout=5) as http:
        answer = await http.get(f"http://{address}/metrics")
    assert answer.status_code == 200, f"{address}: {answer.status_code}"
    return answer.text


def sample(metrics: str, name: str, **labels: str) -> float:
    """The sum of the series of `name` carrying these labels (0 when there is none)."""
    total = 0.0
    for line in metrics.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:{{(.*)}})? (\S+)$", line)
        if match and all(f'{key}="{value}"' in (match.group(1) or "") for key, value in labels.items()):
            total += float(match.group(2))
    return total


def received_message_ids(smtp: SmtpTestServer) -> list[str]:
    return [message[MESSAGE_ID_HEADER] for message in smtp.received if message[MESSAGE_ID_HEADER]]


async def test_two_apis_and_two_workers_in_production_carry_a_stay_through_kills(
    postgresql: None, temporal: TemporalServerProcess, smtp: SmtpTestServer, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.json"
    policy = short_policy(lead=LEAD, stay=STAY, close_after=CLOSE_AFTER)
    policy_file.write_text(json.dumps(policy.model_dump(mode="json")))
    processes = Processes(tmp_path / "logs")
    with postgres_schema() as database_url:
        env = production_environment(database_url=database_url, temporal=temporal, smtp=smtp,
                                     policy_file=policy_file, data_dir=tmp_path / "data")
        try:
            await drive_a_stay(processes, env, smtp, database_url)
        finally:
            processes.kill_all()


async def drive_a_stay(
    processes: Processes, env: dict[str, str], smtp: SmtpTestServer, database_url: str
) -> None:
    upgrade = await asyncio.create_subprocess_exec(*service_command("db"), "upgrade", env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, upgrade_log = await asyncio.wait_for(upgrade.communicate(), 60)
    assert upgrade.returncode == 0, upgrade_log.decode()
    api_ports = free_ports(2)
    metrics_ports = free_ports(4)
    workers: list[ServiceProcess] = [
        processes.worker(with_ports(env, metrics=metrics_ports[n]), name=f"worker-{n + 1}", command=worker_script())
        for n in range(2)
    ]
    apis: list[ApiProcess] = [
        processes.api(port=api_ports[n], env=with_ports(env, metrics=metrics_ports[2 + n], api=api_ports[n]),
                      name=f"api-{n + 1}")
        for n in range(2)
    ]
    for process in [*workers, *apis]:
        process.start()
    with processes.logs_on_failure():
        await asyncio.gather(*(worker.wait_for_log(WORKER_READY) for worker in workers),
                             *(api.wait_healthy() for api in apis))
        addresses = [f"127.0.0.1:{port}" for port in metrics_ports]
        before = [await scrape(address) for address in addresses]  # every process serves its metrics

        pms = {"authorization": f"Bearer {PMS_KEY}"}
        ops = {"authorization": f"Bearer {OPS_KEY}"}
        rid = f"TOPO-{secrets.token_hex(5)}"
        arrival = datetime.now(UTC).replace(microsecond=0) + LEAD
        async with httpx.AsyncClient(base_url=apis[0].url, timeout=20) as first, \
                httpx.AsyncClient(base_url=apis[1].url, timeout=20) as second:
            public_metrics = await first.get("/metrics")
            started = await first.put(f"/reservations/{rid}", json=reservation_body(arrival), headers=pms)
            assert started.status_code == 201, started.text
            await wait_until(lambda: len(received_message_ids(smtp)) >= 1, timeout=30,
                             what="the check-in invitation at the SMTP server")
            apis[0].kill()  # an API dies: the reservation system carries on through the other
            workers[0].kill()  # and so does a worker: the other takes its journeys
            # The killed worker held the journey's workflow task: Temporal hands it to the other
            # after the sticky queue's timeout. Meanwhile the reservation system repeats its
            # request with the same Idempotency-Key, as it does on a timeout or a 503.
            change = {**reservation_body(arrival), "room_type": "suite"}
            updated = await put_until_answered(second, f"/reservations/{rid}", change,
                                               {**pms, "idempotency-key": f"{rid}-suite"})
            assert updated.status_code == 200, updated.text

            async def closed() -> bool:
                answer = await second.get(f"/guest-experience/{rid}", headers=ops)
                return answer.status_code == 200 and answer.json()["stage"] == Stage.completed.value

            await wait_until(closed, timeout=JOURNEY_TIMEOUT, what=f"the journey of {rid} closed", interval=0.5)
            final = (await second.get(f"/guest-experience/{rid}", headers=ops)).json()
        after = [await scrape(address) for address in (addresses[1], addresses[3])]

    journey = JourneyView.model_validate({key: value for key, value in final.items() if key != "messages"})
    print(step_summary([journey]))
    assert journey.room_type == "suite"
    outcomes, strays = step_outcomes([journey], received_message_ids(smtp), await outbound_statuses(database_url))
    assert not strays, f"received, but of no step: {strays}"
    by_step = {outcome.step_key: outcome for outcome in outcomes}
    # The room upgrade goes at once after the invitation, so the worker may be killed while
    # its attempt is under way: an e-mail attempt cut off then is in doubt for staff (never
    # sent again), whether or not the server took it. Every other step was sent once.
    for key in ("checkin_invitation", "upsell:late_checkout", "guest_post_stay_feedback"):
        assert by_step[key].outcome is Outcome.received_once, f"{key}: {by_step[key].detail}"
    upgrade = by_step["upsell:room_upgrade"]
    assert upgrade.outcome in KILLED_WHILE_SENDING, f"upsell:room_upgrade: {upgrade.detail}"
    assert not broken(outcomes), "\n".join(broken(outcomes))
    assert public_metrics.status_code == 404  # production serves metrics on the internal address only
    assert all("guest_journey_" in metrics for metrics in before)
    surviving_worker, surviving_api = after
    assert sample(surviving_worker, "guest_journey_messages_sent_total", channel="email") >= 1
    assert sample(surviving_api, "guest_journey_http_requests_total",
                  route="/guest-experience/{reservation_id}") >= 1
    assert Counter(received_message_ids(smtp)).most_common(1)[0][1] == 1  # nothing twice
