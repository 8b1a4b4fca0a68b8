"""Live journeys: many journeys alive at once on the embedded default, and the
memory their worker keeps for them.

    python -m bench.live_journeys                # 10,000 journeys, 10,000 bare workflows
    python -m bench.live_journeys --count 2000

On the test stand (`bench.stand`: `guest-journey dev` and a bare worker, each
a process of its own, both keeping temporalio's default 1,000 workflows
cached), first `--warm` of each kind are started and both processes'
resident memory (RSS) is read once they are idle; then the rest, `--count`
in all, and RSS again once idle. The journeys are PUT through HTTP (arrivals
in 10-30 days: each journey starts, writes its read model and sleeps on its
timer); the bare workflows (waiting on a signal or a 30-day timer) are
started with `client.start_workflow`. Memory per 1,000 cached workflows is
the RSS growth over the growth of the cache, `min(count, cache) - min(warm,
cache)`. The journeys' worker is a process of its own in the embedded
default (`guest-journey dev` runs the API beside it), so its growth is the
worker's alone. At the end the
running workflows of each kind are counted in Temporal's visibility, and the
journeys in the read model (`GET /guest-experience/journey`).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client

from bench.common import Timing, machine, ratio_line
from bench.stand import (
    CACHE_SIZE,
    Stand,
    new_ids,
    put_journeys,
    rss_mib,
    start_bare,
    start_stand,
    until_idle,
)

TARGET_MEMORY_RATIO = 1.7
COUNT_TIMEOUT = 120.0


@dataclass
class LiveJourneys:
    count: int
    warm: int
    bare: Timing
    journeys: Timing
    bare_rss: tuple[float, float]  # MiB, warm and all
    journeys_rss: tuple[float, float]
    bare_running: int
    journeys_running: int
    volume: dict[str, Any]
    temporal_rss: float
    temporal_file_mib: float

    @property
    def cached(self) -> int:
        return min(self.count, CACHE_SIZE) - min(self.warm, CACHE_SIZE)

    def per_1000_cached(self, rss: tuple[float, float]) -> float:
        return (rss[1] - rss[0]) / self.cached * 1000

    @property
    def memory_ratio(self) -> float:
        return self.per_1000_cached(self.journeys_rss) / self.per_1000_cached(self.bare_rss)

    @property
    def all_accepted(self) -> bool:
        return (not self.journeys.errors and self.journeys_running >= self.count
                and self.volume["active"] >= self.count)


async def running(client: Client, workflow_type: str, expected: int) -> int:
    """Running workflows of a type in visibility, polled until `expected` or a deadline."""
    query = f'WorkflowType = "{workflow_type}" AND ExecutionStatus = "Running"'
    deadline = time.monotonic() + COUNT_TIMEOUT
    while True:
        count = (await client.count_workflows(query)).count
        if count >= expected or time.monotonic() > deadline:
            return count
        await asyncio.sleep(1.0)


async def measure(stand: Stand, count: int, warm: int, concurrency: int) -> LiveJourneys:
    if not 0 < warm < count:
        raise ValueError("warm must be above 0 and below count")
    worker = stand.service.worker_pid  # the journeys' worker: a process of its own in `guest-journey dev`
    await start_bare(stand, new_ids("warm", warm), concurrency, with_update=False)
    await put_journeys(stand.http, new_ids("W", warm), concurrency)
    await stand.until_idle()
    bare_before, journeys_before = rss_mib(stand.bare.pid), rss_mib(worker)

    rest = count - warm
    bare = await start_bare(stand, new_ids("bare", rest), concurrency, with_update=False,
                            label="bare: start_workflow")
    await until_idle(stand.bare.pid)
    bare_after = rss_mib(stand.bare.pid)
    journeys = await put_journeys(stand.http, new_ids("J", rest), concurrency,
                                  label="journeys: PUT /reservations/{id}")
    await until_idle(worker)
    journeys_after = rss_mib(worker)

    return LiveJourneys(
        count=count, warm=warm, bare=bare, journeys=journeys,
        bare_rss=(bare_before, bare_after), journeys_rss=(journeys_before, journeys_after),
        bare_running=await running(stand.client, "BareJourney", count),
        journeys_running=await running(stand.client, "GuestJourneyWorkflow", count),
        volume=(await stand.http.get("/guest-experience/journey")).json(),
        temporal_rss=rss_mib(stand.service.temporal_pid),
        temporal_file_mib=(stand.service.data_dir / "temporal.sqlite").stat().st_size / 2**20,
    )


def report(figures: LiveJourneys, concurrency: int, seconds: float) -> None:
    print(f"{machine()}; {figures.count:,} of each alive at once ({figures.warm} to warm up), "
          f"{concurrency} starts at a time, cache {CACHE_SIZE:,}; {seconds:.0f} s in all")
    print(Timing.HEADER)
    print(figures.bare.line())
    print(figures.journeys.line())
    print(f"running in Temporal: {figures.bare_running:,} bare, {figures.journeys_running:,} journeys; "
          f"read model: {figures.volume['active']:,} active {figures.volume['by_stage']}")
    print(f"{'RSS, MiB':<40}{'warm':>9}{'all':>9}{'per 1,000 cached':>18}")
    for name, rss in (("bare worker", figures.bare_rss),
                      ("guest-journey dev (its worker)", figures.journeys_rss)):
        print(f"{name:<40}{rss[0]:>9.0f}{rss[1]:>9.0f}{figures.per_1000_cached(rss):>18.1f}")
    print(f"Temporal dev server: RSS {figures.temporal_rss:.0f} MiB, "
          f"SQLite file {figures.temporal_file_mib:.0f} MiB")
    print(f"all {figures.count:,} journeys accepted and running, zero errors: "
          f"{'met' if figures.all_accepted else 'not met'}")
    print(ratio_line("journey RSS / bare RSS per 1,000 cached", figures.memory_ratio,
                     f"<= {TARGET_MEMORY_RATIO}", figures.memory_ratio <= TARGET_MEMORY_RATIO))


async def run(count: int, warm: int, concurrency: int) -> None:
    print(machine())
    started = time.monotonic()
    async with start_stand() as stand:
        figures = await measure(stand, count, warm, concurrency)
    report(figures, concurrency, time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="workflows of each kind (default 10,000)")
    parser.add_argument("--warm", type=int, default=50, help="started before the first RSS reading (default 50)")
    parser.add_argument("--concurrency", type=int, default=32, help="starts in flight (default 32)")
    arguments = parser.parse_args()
    if not 0 < arguments.warm < arguments.count:
        parser.error("--warm must be above 0 and below --count")
    asyncio.run(run(arguments.count, arguments.warm, arguments.concurrency))


if __name__ == "__main__":
    main()
