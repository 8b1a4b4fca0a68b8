"""Workers killed with SIGKILL mid-journey, and the SMTP server down for a while:
every journey still completes, and no message arrives twice. A message whose
worker was killed while sending it (recorded `sending`, its outcome unknown)
is not sent again: its retry declares it in doubt for staff, whether the SMTP
server got it or not (docs/chaos.md)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from communications.channels.email import MESSAGE_ID_HEADER
from guest_journey.reservations import Channel
from tests.chaos.databases import (
    messages_retried,
    messages_waiting_to_retry,
    migrate,
    outbound_statuses,
)
from tests.chaos.faults import Clock, kill_and_restart, outage, random_moments
from tests.chaos.journeys import (
    every_message_sent,
    journey_problems,
    start_journeys,
    step_summary,
    wait_for_results,
)
from tests.chaos.outcomes import Outcome, broken, count, report, step_outcomes
from tests.chaos.processes import Processes, TemporalServerProcess, service_environment
from tests.chaos.short_policy import new_reservation_id, short_policy, short_stay
from tests.chaos.size import ChaosSize, chaos_size
from tests.smtp_server import SmtpTestServer

TASK_QUEUE = "guest-journey"
SCENARIO = "worker killed (SIGKILL) at random moments, SMTP server down a while"
# A kill mid-send leaves the message in doubt, received or not: nothing can tell.
ALLOWED = frozenset(
    {Outcome.received_once, Outcome.in_doubt_none_received, Outcome.in_doubt_received, Outcome.not_sent}
)


@pytest.mark.timeout(chaos_size().deadline.total_seconds() + 120)
async def test_killed_workers_and_an_smtp_outage_lose_no_journey_and_no_message(
    database_url: str,
    temporal: TemporalServerProcess,
    smtp: SmtpTestServer,
    processes: Processes,
    size: ChaosSize,
    chaos_random: random.Random,
    tmp_path: Path,
) -> None:
    worker = processes.worker(
        service_environment(
            data_dir=tmp_path / "data",
            temporal_address=temporal.address,
            database_url=database_url,
            smtp_port=smtp.port,
        )
    )
    await migrate(database_url)  # the faults' checks read its tables while the worker may still be starting
    worker.start()
    client = await temporal.client()
    policy = short_policy(lead=size.lead, stay=size.stay, close_after=size.close_after)
    span = (size.lead + size.stay + size.close_after).total_seconds()
    clock = Clock()
    kills = random_moments(chaos_random, size.worker_kills, start=0.1 * span, end=0.6 * span)
    smtp_down_at = chaos_random.uniform(0.2 * span, 0.5 * span)

    async def smtp_refused_a_message() -> bool:
        return await messages_waiting_to_retry(database_url, Channel.email.value) > 0

    async def kill_worker() -> int:
        await kill_and_restart(worker, kills, clock)
        return len(smtp.received)

    faults = asyncio.gather(
        kill_worker(),
        outage(
            what="SMTP server", at=smtp_down_at, lasting=size.smtp_outage.total_seconds(),
            stop=smtp.stop, start=smtp.start, clock=clock,
            until=smtp_refused_a_message, until_what="a message meets the outage",
        ),
    )
    try:
        journeys = await start_journeys(
            client,
            task_queue=TASK_QUEUE,
            policy=policy,
            count=size.journeys,
            in_flight=size.starts_in_flight,
            reservation=lambda _: short_stay(
                new_reservation_id("KILL"), booked_at=datetime.now(UTC), lead=size.lead, stay=size.stay
            ),
        )
        print(f"{clock():7.1f} s  {len(journeys)} journeys started")
        received_by_last_kill, _ = await faults
        results = await wait_for_results(journeys, timeout=size.deadline.total_seconds() - clock())
    except AssertionError as error:
        raise AssertionError(f"{error}\n{processes.logs()}") from None
    finally:
        faults.cancel()
    untouched = sum(every_message_sent(journey) for journey in results)
    print(f"{clock():7.1f} s  every journey finished, {untouched} without a step skipped\n{step_summary(results)}")

    problems = journey_problems(results)
    assert not problems, "\n".join(problems)
    received = [message[MESSAGE_ID_HEADER] for message in smtp.received]
    outcomes, strays = step_outcomes(results, received, await outbound_statuses(database_url))
    assert not strays, f"received, but of no step: {strays}"
    print(report({SCENARIO: count(outcomes)}))
    wrong = broken(outcomes, allowed=ALLOWED)
    assert not wrong, "\n".join(wrong)
    # The faults hit journeys under way: the outage made messages retry, and the
    # last restarted worker carried the journeys on.
    assert await messages_retried(database_url, Channel.email.value) > 0, "the SMTP outage delayed no message"
    assert len(worker.runs) == size.worker_kills + 1
    assert len(received) > received_by_last_kill, "no message was sent after the last worker restart"
