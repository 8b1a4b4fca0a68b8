"""Whole stays: journeys from booking to close on the time-skipping test server.

    python -m bench.whole_stays                  # 200 journeys
    python -m bench.whole_stays --count 100

Each journey is booked 5 days before a 3-night stay, under a policy without
quiet hours, and runs to its close 7 days after departure (invitation,
reminders, offers, feedback and its reminder; e-mails discarded, the read
model in SQLite in a temp dir; payloads encrypted by the journey codec, its
keys in that database, as the worker and the API do: `--no-encryption` turns
it off; `--postgres URL` puts that database on PostgreSQL, a schema of its own
each round, dropped after). The baseline is a bare workflow with the
same shape as a recorded whole stay (tests/workflows/histories/whole_stay.json:
11 timers, 22 activities), its timers and trivial activities in sequence.
Each side is warmed up with one run, then `--count` are started (32 calls at
a time) and time is unlocked until the last one has finished; the rate is
workflows finished per second of wall-clock time, from the first start. There
are `--rounds` rounds (3 by default), each on a new test server, the side that
goes first alternating; the figure is the median of the rounds' ratios (on a
shared machine one run's ratio moved from 0.27 to 0.53 as the load changed).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from sqlalchemy.ext.asyncio import AsyncEngine
    from temporalio.client import Client, WorkflowHandle
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from bench.analytics import postgres_engine
    from bench.common import DiscardSender, machine, use_bytecode_cache
    from commands.devserver import find_installed_binary
    from guest_journey.database import create_engine, session_factory
    from guest_journey.process_exit import leave
    from guest_journey.reservations import Channel
    from guest_journey.schema import upgrade_database
    from guest_journey.settings import Settings
    from guest_journey.temporal import data_converter_for, register_search_attributes
    from tests.workflows.journeys import booking, put, quiet_policy
    from worker import build_worker

TARGET_RATIO = 0.5
TIMERS = 11
ACTIVITIES = 22
RESULT_TIMEOUT = 900.0
# With 1,000 update-with-start calls at once the test server failed some of them
# (a NullPointerException in its waitForUpdateResponse).
STARTS_AT_ONCE = 32


@activity.defn
async def nothing(step: int) -> int:
    return step


@workflow.defn
class BareStay:
    """As many timers and activities as a whole stay, and nothing else."""

    @workflow.run
    async def run(self) -> int:
        done = 0
        for step in range(ACTIVITIES):
            done += await workflow.execute_activity(
                nothing, step, start_to_close_timeout=timedelta(seconds=30)
            )
            if step % 2 == 1 and step // 2 < TIMERS:
                await workflow.sleep(timedelta(hours=12))
        return done


async def wait_for(handles: Iterable[WorkflowHandle[Any, Any]]) -> None:
    """Every result; a long poll that ends before its workflow does is made again."""

    async def one(handle: WorkflowHandle[Any, Any]) -> None:
        while True:
            try:
                await handle.result()
                return
            except RuntimeError as error:
                if "No completion event found" not in str(error):
                    raise

    async with asyncio.timeout(RESULT_TIMEOUT):
        await asyncio.gather(*(one(handle) for handle in handles))


@dataclass
class Side:
    """One side's run: wall-clock seconds, and CPU seconds of this process (the
    worker, its activities and the SDK's threads; not the test server's)."""

    seconds: float
    cpu_seconds: float


async def timed_run(
    env: WorkflowEnvironment, count: int, start: Callable[[], Awaitable[WorkflowHandle[Any, Any]]]
) -> Side:
    """How long `count` workflows took from the first start until they had all finished."""
    gate = asyncio.Semaphore(STARTS_AT_ONCE)

    async def one() -> WorkflowHandle[Any, Any]:
        async with gate:
            return await start()

    started, cpu_started = time.perf_counter(), time.process_time()
    handles = await asyncio.gather(*(one() for _ in range(count)))
    async with env.time_skipping_unlocked():
        with env.auto_time_skipping_disabled():
            await wait_for(handles)
    return Side(time.perf_counter() - started, time.process_time() - cpu_started)


async def run(count: int, *, rounds: int = 1, encryption: bool = True, postgres: str | None = None) -> None:
    sides = [await one_round(count, bare_first=number % 2 == 0, encryption=encryption, postgres=postgres)
             for number in range(rounds)]
    report(count, encryption, sides, "PostgreSQL (a schema of its own each round)" if postgres else "SQLite")


async def one_round(count: int, *, bare_first: bool, encryption: bool, postgres: str | None) -> tuple[Side, Side]:
    """Seconds for `count` bare workflows and `count` whole stays, on a test server of
    their own: the test server keeps every workflow it has run, and slows as they pile
    up (a second round on the same server took half as long again)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_installed_binary("temporal-test-server")),
        data_converter=pydantic_data_converter,
    )
    try:
        await register_search_attributes(env.client, "default")
        with tempfile.TemporaryDirectory(prefix="bench-stays-") as data_dir:
            settings = Settings(
                data_dir=Path(data_dir), task_queue=f"bench-stays-{uuid.uuid4().hex[:8]}", secret_key="bench",
                payload_encryption=encryption,
            )
            async with (postgres_engine(postgres) if postgres else sqlite_engine(settings)) as (engine, _):
                await upgrade_database(engine)
                return await measure(env, settings, engine, count, bare_first=bare_first)
    finally:
        await env.shutdown()


async def measure(
    env: WorkflowEnvironment, settings: Settings, engine: AsyncEngine, count: int, *, bare_first: bool
) -> tuple[Side, Side]:
    sessions = session_factory(engine)
    # the journeys' client and worker with the codec, as `connect_temporal` builds them
    journey_client = Client(**{**env.client.config(), "data_converter": data_converter_for(settings, sessions)})
    bare_queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
    journeys = build_worker(journey_client, settings, sessions, {Channel.email: DiscardSender()})
    bare = Worker(env.client, task_queue=bare_queue, workflows=[BareStay], activities=[nothing])
    policy = quiet_policy()

    async def start_bare() -> WorkflowHandle[Any, Any]:
        return await env.client.start_workflow(
            BareStay.run, id=f"bare-{uuid.uuid4().hex}", task_queue=bare_queue
        )

    async def start_journey() -> WorkflowHandle[Any, Any]:
        reservation = booking(await env.get_current_time(), arrive_in=timedelta(days=5), nights=3)
        handle, _ = await put(journey_client, settings.task_queue, reservation, policy)
        return handle

    async with journeys, bare:
        await timed_run(env, 1, start_bare)
        await timed_run(env, 1, start_journey)
        if bare_first:  # the order alternates from round to round
            bare_side = await timed_run(env, count, start_bare)
            journey_side = await timed_run(env, count, start_journey)
        else:
            journey_side = await timed_run(env, count, start_journey)
            bare_side = await timed_run(env, count, start_bare)
    return bare_side, journey_side


@asynccontextmanager
async def sqlite_engine(settings: Settings) -> AsyncIterator[tuple[AsyncEngine, str]]:
    """The embedded default's database: a SQLite file in the round's data dir."""
    engine = create_engine(settings.resolved_database_url)
    try:
        yield engine, "SQLite"
    finally:
        await engine.dispose()


def report(count: int, encryption: bool, sides: list[tuple[Side, Side]], database: str) -> None:
    encrypted = "journey payloads encrypted" if encryption else "no payload encryption"
    print(f"{machine()}; {count:,} of each, started {STARTS_AT_ONCE} at a time, {len(sides)} round(s), "
          f"each on a new test server; {encrypted}; the service's database: {database}")
    print(f"{'round':<7}{'bare s':>9}{'bare /s':>9}{'stays s':>9}{'stays /s':>10}{'ratio':>8}"
          f"{'CPU ms/bare':>13}{'CPU ms/stay':>13}")
    ratios = []
    for number, (bare, stays) in enumerate(sides, 1):
        ratios.append(bare.seconds / stays.seconds)  # (count / stays.seconds) / (count / bare.seconds)
        print(f"{number:<7}{bare.seconds:>9.1f}{count / bare.seconds:>9.2f}{stays.seconds:>9.1f}"
              f"{count / stays.seconds:>10.2f}{ratios[-1]:>8.2f}"
              f"{bare.cpu_seconds / count * 1000:>13.0f}{stays.cpu_seconds / count * 1000:>13.0f}")
    ratio = statistics.median(ratios)
    verdict = "met" if ratio >= TARGET_RATIO else "not met"
    print(f"baseline: bare ({TIMERS} timers, {ACTIVITIES} activities); whole stays: booking to close; "
          "CPU: this process's (worker, activities, SDK), per workflow")
    print(f"whole stays / baseline, median of {len(sides)} = {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="journeys of each kind (default 200)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of both sides, each on a new test server; the median ratio is the figure (default 3)")
    parser.add_argument("--no-encryption", action="store_true",
                        help="journeys without the payload codec (GUEST_JOURNEY_PAYLOAD_ENCRYPTION=false)")
    parser.add_argument("--postgres", metavar="URL",
                        help="the service's database on PostgreSQL (postgresql+psycopg://…) instead of SQLite")
    arguments = parser.parse_args()
    use_bytecode_cache()
    print(machine())
    asyncio.run(run(arguments.count, rounds=arguments.rounds, encryption=not arguments.no_encryption,
                    postgres=arguments.postgres))
    leave(0)  # the test server's and the SDK's native threads could abort a finalizing interpreter


if __name__ == "__main__":
    main()
