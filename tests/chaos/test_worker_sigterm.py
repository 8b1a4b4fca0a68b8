"""SIGTERM to the worker while the SMTP server answers slowly (within the
client's timeout), as a rolling restart does it: a new worker is started and
the old one told to stop. The old worker stops taking work, lets the sends in
flight finish and be recorded, and exits; the new one carries the journeys on.
Every message arrives exactly once, and none is in doubt: a graceful stop
interrupts no send."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.chaos.databases import migrate, outbound_statuses
from tests.chaos.faults import Clock
from tests.chaos.journeys import start_journeys, step_summary, wait_for_results
from tests.chaos.outcomes import assert_received_once_or_not_sent
from tests.chaos.processes import (
    WORKER_READY,
    Processes,
    TemporalServerProcess,
    service_environment,
    start_worker_and_api,
    wait_until,
    worker_script,
)
from tests.chaos.short_policy import guest_email, quick_stay, quick_stay_policy
from tests.chaos.size import ChaosSize, chaos_size
from tests.chaos.smtp_stand_in import SmtpAnswer, SmtpStandIn

TASK_QUEUE = "guest-journey"
SCENARIO = "SIGTERM to the worker during slow SMTP sends"
IN_FLIGHT_AT_SIGTERM = 2  # messages the SMTP server is still to answer when the worker is told to stop
# The worker's graceful shutdown is derived from its longest send (SMTP: 30 s and
# QUIT) plus the time to record it; it must exit well within that.
EXIT_WITHIN = 60.0


@pytest.mark.timeout(chaos_size().deadline.total_seconds() + 120)
async def test_sigterm_lets_sends_in_flight_finish_and_sends_each_message_once(
    temporal: TemporalServerProcess,
    database_url: str,
    processes: Processes,
    size: ChaosSize,
    tmp_path: Path,
) -> None:
    clock = Clock()
    slow_by = size.slow_smtp_answer.total_seconds()
    async with SmtpStandIn(answer=lambda _: SmtpAnswer.slow, slow_by=slow_by) as smtp:
        env = service_environment(
            data_dir=tmp_path / "data", temporal_address=temporal.address, database_url=database_url,
            smtp_port=smtp.port,
        )
        await migrate(database_url)
        first, _ = await start_worker_and_api(processes, env)
        workers = [first]
        print(f"{clock():7.1f} s  worker ready")
        client = await temporal.client()
        in_flight_at_sigterm: list[set[str]] = []
        exits: list[tuple[int, float]] = []  # exit status, seconds from SIGTERM

        async def roll_over() -> None:
            for number in range(2, size.worker_sigterms + 2):
                await wait_until(lambda: len(smtp.in_flight) >= IN_FLIGHT_AT_SIGTERM, timeout=60,
                                 what=f"{IN_FLIGHT_AT_SIGTERM} messages in flight at the SMTP server", interval=0.05)
                old, new = workers[-1], processes.worker(env, name=f"worker-{number}", command=worker_script())
                in_flight_at_sigterm.append(smtp.in_flight)
                new.start()
                old.terminate()
                stopped_at = clock()
                workers.append(new)
                print(f"{stopped_at:7.1f} s  {new.name} started, SIGTERM to {old.name} "
                      f"with {len(in_flight_at_sigterm[-1])} sends in flight")
                status = await old.wait_exit(EXIT_WITHIN)
                exits.append((status, clock() - stopped_at))
                print(f"{clock():7.1f} s  {old.name} exited with status {status}")
                await new.wait_for_log(WORKER_READY)
                print(f"{clock():7.1f} s  {new.name} ready")

        with processes.logs_on_failure():
            journeys = await start_journeys(
                client, task_queue=TASK_QUEUE, policy=quick_stay_policy(size), count=size.sigterm_journeys,
                in_flight=size.starts_in_flight,
                reservation=lambda index: quick_stay("TERM", size, email=guest_email(index)),
            )
            print(f"{clock():7.1f} s  {len(journeys)} journeys started")
            # The stops begin once journeys are under way: starting one needs a worker to answer.
            await asyncio.wait_for(roll_over(), timeout=size.deadline.total_seconds())
            results = await wait_for_results(journeys, timeout=size.deadline.total_seconds() - clock())
    print(f"{clock():7.1f} s  every journey finished\n{step_summary(results)}")

    assert_received_once_or_not_sent(SCENARIO, results, smtp.received, await outbound_statuses(database_url))
    assert [status for status, _ in exits] == [0] * size.worker_sigterms, f"exits (status, seconds): {exits}"
    # Each send in flight at a SIGTERM was answered to a worker still listening.
    interrupted = sorted(message_id for ids in in_flight_at_sigterm for message_id in ids if message_id in smtp.unheard)
    assert not interrupted, f"sends cut off by the shutdown: {interrupted}"
    assert all(ids <= set(smtp.answered) for ids in in_flight_at_sigterm)
