"""Event to visible: from a PMS event to its stage in `GET /guest-experience/{id}`.

    python -m bench.event_to_visible             # 2,000 live journeys, 500 events
    python -m bench.event_to_visible --live 500 --events 50

On the test stand (`bench.stand`: `guest-journey dev` and a bare worker, each
a process of its own, with the same workflow cache size), `--live` journeys
(PUT through HTTP) and as many bare workflows are started and settle. Then,
one at a time, `--events` journeys chosen at random get
`POST /reservations/{id}/events` (`checked_in`), and
`GET /guest-experience/{id}` is read until its stage is `in_stay`; the time
is from sending the event to the first answer that shows it. The baseline does the same to as many bare workflows with Temporal alone:
a signal that moves the stage, then a query until it shows. With more live
workflows than the cache holds, some events reach a workflow that must be
replayed first, on both sides. p99 is the nearest-rank percentile.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.bare import BareJourney
from bench.common import Timing, machine, ratio_line, timed
from bench.stand import Stand, populate, start_stand

TARGET_RATIO = 2.0
VISIBLE_TIMEOUT = 30.0
STAGE = "in_stay"


@dataclass
class EventToVisible:
    started: Timing
    baseline: Timing
    visible: Timing
    bare_reads: list[int] = field(default_factory=list)  # reads until shown, per event
    journey_reads: list[int] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.visible.p99_ms / self.baseline.p99_ms


async def until_shown(read: Callable[[], Awaitable[str]], reads: list[int]) -> None:
    """Read until the stage shows; count the reads it took."""
    deadline = time.monotonic() + VISIBLE_TIMEOUT
    attempts = 1
    while await read() != STAGE:
        if time.monotonic() > deadline:
            raise TimeoutError(f"stage {STAGE} not shown after {VISIBLE_TIMEOUT:.0f} s")
        attempts += 1
    reads.append(attempts)


async def measure(stand: Stand, live: int, events: int, concurrency: int) -> EventToVisible:
    if not 0 < events <= live:
        raise ValueError("events must be above 0 and at most live")
    rng = random.Random(11)
    population = await populate(stand, live)
    bare_ids = rng.sample(population.bare_ids, events)
    journey_ids = rng.sample(population.journey_ids, events)
    bare_reads: list[int] = []
    journey_reads: list[int] = []

    async def bare_event(index: int) -> None:
        handle = stand.client.get_workflow_handle_for(BareJourney.run, bare_ids[index])
        await handle.signal(BareJourney.move, STAGE)
        await until_shown(lambda: handle.query(BareJourney.current_stage), bare_reads)

    async def journey_event(index: int) -> None:
        reservation_id = journey_ids[index]
        response = await stand.http.post(f"/reservations/{reservation_id}/events", json={"type": "checked_in"})
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")

        async def stage() -> str:
            answer = await stand.http.get(f"/guest-experience/{reservation_id}")
            if answer.status_code != 200:
                raise RuntimeError(f"GET: HTTP {answer.status_code}: {answer.text[:200]}")
            return str(answer.json()["stage"])

        await until_shown(stage, journey_reads)

    baseline = await timed("baseline: signal, then query", events, concurrency, bare_event)
    visible = await timed("POST event, then GET", events, concurrency, journey_event)
    return EventToVisible(population.journeys, baseline, visible, bare_reads, journey_reads)


def report(figures: EventToVisible, live: int, events: int, concurrency: int) -> None:
    print(f"{machine()}; {live:,} live of each kind, {events} events, {concurrency} at a time")
    print(Timing.HEADER)
    for timing in (figures.started, figures.baseline, figures.visible):
        print(timing.line())
    for name, reads in (("baseline", figures.bare_reads), ("journeys", figures.journey_reads)):
        if reads:
            print(f"{name}: shown on the first read {reads.count(1)} of {len(reads)} times, "
                  f"at most {max(reads)} reads")
    print(ratio_line("p99 event to visible / baseline p99", figures.ratio, f"<= {TARGET_RATIO}",
                     figures.ratio <= TARGET_RATIO))
    print(f"median / baseline median = {figures.visible.median_ms / figures.baseline.median_ms:.2f}")


async def run(live: int, events: int, concurrency: int) -> None:
    print(machine())
    async with start_stand() as stand:
        figures = await measure(stand, live, events, concurrency)
    report(figures, live, events, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--live", type=int, default=2_000, help="live workflows of each kind (default 2,000)")
    parser.add_argument("--events", type=int, default=500, help="events sent to each kind (default 500)")
    parser.add_argument("--concurrency", type=int, default=1, help="events in flight (default 1)")
    arguments = parser.parse_args()
    if not 0 < arguments.events <= arguments.live:
        parser.error("--events must be above 0 and at most --live")
    asyncio.run(run(arguments.live, arguments.events, arguments.concurrency))


if __name__ == "__main__":
    main()
