"""Intake rate: journeys started through `PUT /reservations/{id}` on the embedded default.

    python -m bench.intake                       # 2,000 reservations, 32 at a time
    python -m bench.intake --count 1000 --concurrency 16

On the test stand (`bench.stand`: `guest-journey dev` and a bare worker, each
a process of its own), the baseline is the floor Temporal sets on this
machine: the bare workflow started `--count` times with
`client.start_workflow` at the same concurrency. As the API starts journeys
with update-with-start, which returns only once the worker has run the first
workflow task (the PUT's answer is the journey's acknowledgement), the bare
workflow is also started that way and that ratio is printed too. Then
`--count` reservations (arrival in 10-30 days, so nothing is sent) are PUT
through HTTP. One of each is made first, so that no side pays for warming up,
and each phase starts once both workers are idle (the start_workflow phase
leaves its first workflow tasks to the worker). The CPU time each process used
per workflow, until it was idle again, says where the time goes. Latencies
are per request; p99 is the nearest-rank percentile.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

from bench.common import Timing, machine, ratio_line
from bench.stand import Stand, new_ids, put_journeys, start_bare, start_stand

TARGET_RATIO = 0.7


@dataclass
class Intake:
    baseline: Timing
    with_update: Timing
    intake: Timing
    cpu: dict[str, dict[str, float]]  # phase -> process -> CPU seconds

    @property
    def ratio(self) -> float:
        return self.intake.rate / self.baseline.rate


async def measure(stand: Stand, count: int, concurrency: int) -> Intake:
    for with_update in (False, True):
        await start_bare(stand, new_ids("warm", 1), 1, with_update=with_update)
    await put_journeys(stand.http, new_ids("W", 1), 1)
    await stand.until_idle()
    meter = stand.cpu_meter()
    baseline = await start_bare(stand, new_ids("bare", count), concurrency, with_update=False,
                                label="baseline: start_workflow")
    await stand.until_idle()  # the first workflow tasks of those
    cpu = {"baseline": meter.used()}
    with_update = await start_bare(stand, new_ids("uws", count), concurrency, with_update=True,
                                   label="bare update-with-start")
    await stand.until_idle()
    cpu["update-with-start"] = meter.used()
    intake = await put_journeys(stand.http, new_ids("B", count), concurrency,
                                label="intake: PUT /reservations/{id}")
    await stand.until_idle()  # the journeys' activity and second workflow task
    cpu["intake"] = meter.used()
    return Intake(baseline, with_update, intake, cpu)


def report(figures: Intake, count: int, concurrency: int) -> None:
    print(f"{machine()}; {count:,} each, {concurrency} at a time")
    print(Timing.HEADER)
    for timing in (figures.baseline, figures.with_update, figures.intake):
        print(timing.line())
    names = list(figures.cpu["baseline"])
    print("CPU ms per workflow started, by process (until idle again):")
    print(f"{'':<20}" + "".join(f"{name:>34}" for name in names))
    for phase, used in figures.cpu.items():
        print(f"{phase:<20}" + "".join(f"{used[name] * 1000 / count:>34.1f}" for name in names))
    print(ratio_line("intake / baseline", figures.ratio, f">= {TARGET_RATIO}", figures.ratio >= TARGET_RATIO))
    print(f"intake / bare update-with-start = {figures.intake.rate / figures.with_update.rate:.2f}")


async def run(count: int, concurrency: int) -> None:
    print(machine())
    async with start_stand() as stand:
        figures = await measure(stand, count, concurrency)
    report(figures, count, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2_000, help="workflows of each kind (default 2,000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.count, arguments.concurrency))


if __name__ == "__main__":
    main()
