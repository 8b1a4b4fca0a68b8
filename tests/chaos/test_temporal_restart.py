"""The Temporal dev server killed with SIGKILL mid-run and started again on the
same SQLite file and port: no journey is lost and no message is repeated."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus

from communications.channels.email import MESSAGE_ID_HEADER
from guest_journey.reservations import Channel
from tests.chaos.faults import Clock
from tests.chaos.journeys import (
    delivery_problems,
    journey_problems,
    start_journeys,
    step_summary,
    wait_for_results,
)
from tests.chaos.processes import Processes, TemporalServerProcess, service_environment
from tests.chaos.short_policy import new_reservation_id, short_policy, short_stay
from tests.chaos.size import ChaosSize, chaos_size
from tests.smtp_server import SmtpTestServer

TASK_QUEUE = "guest-journey"


@pytest.mark.timeout(chaos_size().deadline.total_seconds() + 120)
async def test_killed_temporal_server_restarted_on_its_file_loses_no_journey(
    temporal: TemporalServerProcess,
    database_url: str,
    smtp: SmtpTestServer,
    processes: Processes,
    size: ChaosSize,
    chaos_random: random.Random,
    tmp_path: Path,
) -> None:
    worker = processes.worker(
        service_environment(
            data_dir=tmp_path / "data", temporal_address=temporal.address,
            database_url=database_url, smtp_port=smtp.port,
        )
    )
    worker.start()
    client = await temporal.client()
    policy = short_policy(lead=size.lead, stay=size.stay, close_after=size.close_after)
    span = (size.lead + size.stay + size.close_after).total_seconds()
    clock = Clock()
    try:
        journeys = await start_journeys(
            client,
            task_queue=TASK_QUEUE,
            policy=policy,
            count=size.journeys_through_server_kill,
            in_flight=size.starts_in_flight,
            reservation=lambda _: short_stay(
                new_reservation_id("TSRV"), booked_at=datetime.now(UTC), lead=size.lead, stay=size.stay
            ),
        )
        print(f"{clock():7.1f} s  {len(journeys)} journeys started")
        await asyncio.sleep(max(0.0, chaos_random.uniform(0.2 * span, 0.5 * span) - clock()))
        received_before_kill = len(smtp.received)
        temporal.kill()
        print(f"{clock():7.1f} s  Temporal dev server killed (SIGKILL), {received_before_kill} messages sent")
        temporal.start()
        await temporal.wait_ready()
        print(f"{clock():7.1f} s  Temporal dev server answering again on {temporal.db_file.name}")

        for journey in journeys:  # every journey started before the kill is still there
            description = await journey.handle.describe()
            assert description.status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED)
        results = await wait_for_results(journeys, timeout=size.deadline.total_seconds() - clock())
    except AssertionError as error:
        raise AssertionError(f"{error}\n{processes.logs()}\n{temporal.log_tail()}") from None
    print(f"{clock():7.1f} s  every journey finished\n{step_summary(results)}")

    problems = journey_problems(results)
    assert not problems, "\n".join(problems)
    received = [message[MESSAGE_ID_HEADER] for message in smtp.received]
    problems = delivery_problems(results, received, Channel.email)
    assert not problems, "\n".join(problems)
    assert len(received) > received_before_kill, "no message was sent after the restart"
    assert len(temporal.runs) == 2 and worker.running
