"""The service's database busy right when messages are handed over: another
connection holds the message table (SQLite: the write lock, `BEGIN IMMEDIATE`,
with a write of its own; PostgreSQL: `LOCK TABLE message IN EXCLUSIVE MODE`)
for a few seconds, taken at the moment the SMTP server has a message and
before it answers; the server answers in half a second, so that the messages
other journeys have under way are answered while the lock is held too. On
SQLite the hand-over record waits for the lock (the busy timeout is longer);
on PostgreSQL the worker's connections have a `lock_timeout` of a second, so
the record fails and is tried again inside the activity. Either way every
message arrives exactly once, and none is in doubt (the server answered;
only the record was late)."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from tests.chaos.database_lock import BusyDatabase, with_lock_timeout
from tests.chaos.databases import migrate, outbound_statuses
from tests.chaos.faults import Clock
from tests.chaos.journeys import start_journeys, step_summary, wait_for_results
from tests.chaos.outcomes import assert_received_once_or_not_sent
from tests.chaos.processes import (
    Processes,
    TemporalServerProcess,
    service_environment,
    start_worker_and_api,
)
from tests.chaos.short_policy import guest_email, quick_stay, quick_stay_policy
from tests.chaos.size import ChaosSize, chaos_size
from tests.chaos.smtp_stand_in import SmtpAnswer, SmtpStandIn

TASK_QUEUE = "guest-journey"
SCENARIO = "database busy while hand-overs are recorded"
PAUSE_BETWEEN_EPISODES = (1.0, 3.0)  # seconds, chosen at random
SMTP_ANSWERS_AFTER = 0.5  # seconds
RECORD_RETRIED = "recording its hand-over failed"  # the worker's log line
LOCK_TIMEOUT = timedelta(seconds=1)  # of the worker's PostgreSQL connections


@pytest.mark.timeout(chaos_size().deadline.total_seconds() + 120)
async def test_a_busy_database_during_hand_overs_sends_each_message_once(
    temporal: TemporalServerProcess,
    database_url: str,
    processes: Processes,
    size: ChaosSize,
    chaos_random: random.Random,
    tmp_path: Path,
) -> None:
    clock = Clock()
    busy = BusyDatabase(
        database_url, hold=size.database_busy.total_seconds(), episodes=size.database_busy_episodes,
        pause=PAUSE_BETWEEN_EPISODES, rng=chaos_random,
    )
    try:
        smtp = SmtpStandIn(
            answer=lambda _: SmtpAnswer.slow, slow_by=SMTP_ANSWERS_AFTER, before_answer=busy.hold_if_due
        )
        async with smtp:
            env = service_environment(
                data_dir=tmp_path / "data", temporal_address=temporal.address,
                database_url=with_lock_timeout(database_url, LOCK_TIMEOUT), smtp_port=smtp.port,
            )
            await migrate(database_url)
            worker, _ = await start_worker_and_api(processes, env)
            print(f"{clock():7.1f} s  worker ready")
            client = await temporal.client()
            with processes.logs_on_failure():
                journeys = await start_journeys(
                    client, task_queue=TASK_QUEUE, policy=quick_stay_policy(size), count=size.busy_database_journeys,
                    in_flight=size.starts_in_flight,
                    reservation=lambda index: quick_stay("BUSY", size, email=guest_email(index)),
                )
                print(f"{clock():7.1f} s  {len(journeys)} journeys started")
                results = await wait_for_results(journeys, timeout=size.deadline.total_seconds() - clock())
    finally:
        busy.close()
    retried = worker.log().count(RECORD_RETRIED)
    met = busy.during(smtp.answered_at)
    print(f"{clock():7.1f} s  every journey finished\n{step_summary(results)}")
    print(f"{len(busy.episodes)} lock episodes of {size.database_busy.total_seconds():g} s; "
          f"{met} messages answered by the SMTP server while the lock was held; "
          f"hand-over records tried again {retried} times")

    assert_received_once_or_not_sent(SCENARIO, results, smtp.received, await outbound_statuses(database_url))
    assert busy.episodes, "the database was never locked"
    assert met > 0, "no message was handed over while the database was locked"
    if not database_url.startswith("sqlite"):
        assert retried > 0, "no hand-over record met the lock's timeout"
