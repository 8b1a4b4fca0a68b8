"""Reads: `GET /guest-experience/{id}` at a steady rate, on the embedded default.

    python -m bench.read                         # 100 requests/s for 60 s, 1,000 live journeys
    python -m bench.read --rate 50 --seconds 20 --live 200
    python -m bench.read --consistent            # GET …?consistent=true: a workflow query each

On the test stand (`bench.stand`: `guest-journey dev` and a bare worker, each
a process of its own, with the same workflow cache size), `--live` journeys
(PUT through HTTP) and as many bare workflows are started and settle. The
baseline queries bare workflows chosen at random (`BareJourney.current_stage`)
at `--rate` per second for `--seconds`; then the journeys are read the same
way through the API (the journey from the read model, or with `--consistent`
a workflow query, plus its messages from the database). Both are open loop: request `i` leaves at `i / rate` seconds
whether or not the earlier ones have answered, and its latency runs from that
moment. Anything but 200 is an error. The CPU time each process used per
request says how many requests a second the machine can serve when they
outrun it (latencies then grow without bound, open loop). p99 is the
nearest-rank percentile.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from dataclasses import dataclass

from bench.bare import BareJourney
from bench.common import Timing, machine, paced, ratio_line
from bench.stand import Stand, populate, start_stand

TARGET_RATIO = 2.0


@dataclass
class Reads:
    started: Timing
    baseline: Timing
    reads: Timing
    cpu: dict[str, dict[str, float]]  # side -> process -> CPU seconds

    @property
    def ratio(self) -> float:
        return self.reads.p99_ms / self.baseline.p99_ms

    @property
    def met(self) -> bool:
        return self.ratio <= TARGET_RATIO and not self.reads.errors


async def measure(stand: Stand, rate: float, seconds: float, live: int, consistent: bool = False) -> Reads:
    rng = random.Random(13)
    population = await populate(stand, live)
    count = int(rate * seconds)
    bare_ids = [rng.choice(population.bare_ids) for _ in range(count)]
    journey_ids = [rng.choice(population.journey_ids) for _ in range(count)]

    async def query(index: int) -> None:
        handle = stand.client.get_workflow_handle_for(BareJourney.run, bare_ids[index])
        await handle.query(BareJourney.current_stage)

    meter = stand.cpu_meter()
    baseline = await paced("baseline: workflow query", rate, seconds, query)
    cpu = {"baseline": meter.used()}
    params = {"consistent": "true"} if consistent else {}
    async with stand.new_http() as http:

        async def get(index: int) -> None:
            response = await http.get(f"/guest-experience/{journey_ids[index]}", params=params)
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")

        reads = await paced("GET /guest-experience/{id}", rate, seconds, get)
    cpu["reads"] = meter.used()
    return Reads(population.journeys, baseline, reads, cpu)


def report(figures: Reads, rate: float, seconds: float, live: int) -> None:
    print(f"{machine()}; {rate:g} requests/s for {seconds:g} s, {live:,} live of each kind")
    print(Timing.HEADER)
    for timing in (figures.started, figures.baseline, figures.reads):
        print(timing.line())
    count = int(rate * seconds)
    names = list(figures.cpu["baseline"])
    print("CPU ms per request, by process:")
    print(f"{'':<12}" + "".join(f"{name:>34}" for name in names))
    for side, used in figures.cpu.items():
        print(f"{side:<12}" + "".join(f"{used[name] * 1000 / count:>34.1f}" for name in names))
    print(ratio_line("p99 read / baseline p99 (and zero errors)", figures.ratio,
                     f"<= {TARGET_RATIO}", figures.met))
    print(f"median / baseline median = {figures.reads.median_ms / figures.baseline.median_ms:.2f}")


async def run(rate: float, seconds: float, live: int, consistent: bool) -> None:
    print(machine())
    async with start_stand() as stand:
        figures = await measure(stand, rate, seconds, live, consistent)
    report(figures, rate, seconds, live)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second (default 100)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long (default 60)")
    parser.add_argument("--live", type=int, default=1_000, help="live workflows of each kind (default 1,000)")
    parser.add_argument("--consistent", action="store_true", help="read with ?consistent=true (a workflow query)")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.rate, arguments.seconds, arguments.live, arguments.consistent))


if __name__ == "__main__":
    main()
