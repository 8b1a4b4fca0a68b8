"""The baselines' workflow, and the worker process that runs it.

    python -m bench.bare --address 127.0.0.1:7233 --task-queue bench-bare

`BareJourney` is the least a long-lived journey is: started, then waiting on a
timer or a signal; it answers an update (as a journey acknowledges a PUT), a
signal that moves its stage and a query that reads it. The worker connects
the way the journeys' worker does (`connect_temporal`: the same data converter
and tracing interceptor) and keeps the same number of workflows cached.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.worker import Worker

    from guest_journey.settings import Settings
    from guest_journey.temporal import connect_temporal

READY = "polling"  # the line the worker prints once it polls its task queue


@workflow.defn
class BareJourney:
    """Started, then waiting on a timer or a signal."""

    def __init__(self) -> None:
        self.done = False
        self.stage = "pre_arrival"

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done, timeout=timedelta(days=30))

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.signal
    def move(self, stage: str) -> None:
        self.stage = stage

    @workflow.update
    def touch(self, value: str) -> str:
        return value

    @workflow.query
    def current_stage(self) -> str:
        return self.stage


async def serve(address: str, task_queue: str, cache: int) -> None:
    client = await connect_temporal(Settings(temporal_address=address, secret_key="bench"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(
        client, task_queue=task_queue, workflows=[BareJourney], max_cached_workflows=cache
    )
    async with worker:
        print(READY, flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", required=True, help="the Temporal frontend, host:port")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--cache", type=int, default=1_000, help="workflows kept cached")
    arguments = parser.parse_args()
    asyncio.run(serve(arguments.address, arguments.task_queue, arguments.cache))


if __name__ == "__main__":
    main()
