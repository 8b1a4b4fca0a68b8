"""Start shapes: what each move of a journey's first workflow task costs Temporal.

    python -m bench.start_shapes                 # 1,000 workflows per shape, 32 at a time
    python -m bench.start_shapes --count 400

A journey's PUT is an update-with-start whose first workflow task answers the
update, upserts the search attributes and schedules the read-model activity
(`record_journey`). Here a trivial workflow (`Shape`, run by a worker in this
process) makes those moves one by one, on the test stand's Temporal dev
server, and each shape is started `--count` times: `client.start_workflow`,
update-with-start, then with an upsert, an activity, both, and both with a
local activity instead; last the journey's shape since issue 15: search
attributes given with the start, alone and with a local activity. Printed: starts per second, latency, and the CPU time
the dev server used per workflow until it was idle again, which says what each
move costs the server whatever the worker does.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.common import Timing, machine, timed
from bench.stand import Stand, cpu_seconds, start_stand, until_idle
from guest_journey.temporal import JOURNEY_STAGE, RESERVATION_ID

SHAPES = (
    "start_workflow",
    "update-with-start",
    "update-with-start, upsert",
    "update-with-start, activity",
    "update-with-start, upsert, activity",
    "update-with-start, upsert, local activity",
    "update-with-start, attributes at start",
    "update-with-start, attributes at start, local activity",
)


@activity.defn
async def record(value: str) -> str:
    return value


@workflow.defn
class Shape:
    """Makes the moves its shape names, then waits like a journey."""

    @workflow.run
    async def run(self, shape: str) -> None:
        if "upsert" in shape:
            workflow.upsert_search_attributes([
                JOURNEY_STAGE.value_set("pre_arrival"),
                RESERVATION_ID.value_set(workflow.info().workflow_id),
            ])
        if "local activity" in shape:
            await workflow.execute_local_activity(record, shape, start_to_close_timeout=timedelta(seconds=30))
        elif "activity" in shape:
            await workflow.execute_activity(record, shape, start_to_close_timeout=timedelta(seconds=30))
        await workflow.wait_condition(lambda: False, timeout=timedelta(days=30))

    @workflow.update
    def touch(self, value: str) -> str:
        return value


async def measure(stand: Stand, count: int, concurrency: int) -> list[tuple[Timing, float]]:
    """Per shape: the starts, and the dev server's CPU ms per workflow."""
    queue = f"bench-shapes-{uuid.uuid4().hex[:8]}"
    server = stand.service.temporal_pid
    figures = []
    worker = Worker(stand.client, task_queue=queue, workflows=[Shape], activities=[record],
                    workflow_runner=UnsandboxedWorkflowRunner())
    async with worker:
        for shape in SHAPES:
            ids = [f"shape-{uuid.uuid4().hex}" for _ in range(count)]

            async def start(index: int, shape: str = shape, ids: list[str] = ids) -> None:
                if shape == "start_workflow":
                    await stand.client.start_workflow(Shape.run, shape, id=ids[index], task_queue=queue)
                    return
                attributes = TypedSearchAttributes([
                    SearchAttributePair(JOURNEY_STAGE, "pre_arrival"), SearchAttributePair(RESERVATION_ID, ids[index]),
                ]) if "attributes at start" in shape else None
                operation = WithStartWorkflowOperation(
                    Shape.run, shape, id=ids[index], task_queue=queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    search_attributes=attributes,
                )
                await stand.client.execute_update_with_start_workflow(
                    Shape.touch, shape, start_workflow_operation=operation
                )

            await until_idle(server)
            before = cpu_seconds(server)
            timing = await timed(shape, count, concurrency, start)
            await until_idle(server)
            figures.append((timing, (cpu_seconds(server) - before) * 1000 / count))
    return figures


def report(figures: list[tuple[Timing, float]], count: int, concurrency: int) -> None:
    print(f"{machine()}; {count:,} per shape, {concurrency} at a time")
    print(f"{'shape':<44}{'per s':>8}{'median ms':>11}{'p99 ms':>10}{'errors':>8}{'Temporal CPU ms':>17}")
    for timing, server_ms in figures:
        print(f"{timing.label:<44}{timing.rate:>8.1f}{timing.median_ms:>11.1f}{timing.p99_ms:>10.1f}"
              f"{len(timing.errors):>8}{server_ms:>17.1f}")
        if timing.errors:
            print(f"  first error: {timing.errors[0]}")


async def run(count: int, concurrency: int) -> None:
    print(machine())
    async with start_stand() as stand:
        figures = await measure(stand, count, concurrency)
    report(figures, count, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000, help="workflows per shape (default 1,000)")
    parser.add_argument("--concurrency", type=int, default=32, help="starts in flight (default 32)")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.count, arguments.concurrency))


if __name__ == "__main__":
    main()
