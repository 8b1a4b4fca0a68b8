"""Bulk import rate: `guest-journey import`'s lines per second against bare `start_workflow`.

    python -m bench.bulk_import                       # 2,000 reservations, 32 at a time
    python -m bench.bulk_import --count 5000 --concurrency 64

On the test stand (`bench.stand`: `guest-journey dev` and a bare worker), the baseline
is the bare workflow started `--count` times with `client.start_workflow` at the
same concurrency. Then `--count` reservations (arrival in 10-30 days, so nothing is
sent), written as a JSON Lines file, are read and started the way `guest-journey
import` does (`commands.bulk_import`: its file reader, its client with the payload
codec and the service's database, `services.reservation_import` at `--concurrency`),
in this process so that Python's start-up is not counted; the import is timed from
its first line to its last answer. Both phases start once both workers are idle.
A re-run of the same file follows, whose lines must all come back unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Timing, machine, ratio_line, reservation_body
from bench.stand import Stand, new_ids, start_bare, start_stand
from commands.bulk_import import import_lines, read_lines
from guest_journey.settings import Settings
from services.reservation_import import ImportTally, Outcome

TARGET_RATIO = 0.8
SECRET_KEY = "bench-secret-key-bench-secret-key"  # the stand's (`bench.stand.embedded_service`)


def write_file(path: Path, reservation_ids: list[str]) -> None:
    rng, now = random.Random(11), datetime.now(UTC)
    with path.open("w") as file:
        for reservation_id in reservation_ids:
            file.write(json.dumps({"reservation_id": reservation_id, **reservation_body(rng, now)}) + "\n")


def service_settings(stand: Stand) -> Settings:
    service = stand.service
    return Settings(
        data_dir=service.data_dir, temporal_address=service.temporal_address,
        policy_file=service.data_dir / "policy.yaml", secret_key=SECRET_KEY, public_base_url=service.api_url,
    )


async def import_file(stand: Stand, path: Path, concurrency: int) -> ImportTally:
    return await import_lines(service_settings(stand), list(read_lines(path)), concurrency=concurrency)


def as_timing(label: str, tally: ImportTally) -> Timing:
    return Timing(label, tally.done, tally.seconds, [], [failure.error for failure in tally.failures])


@dataclass
class BulkImport:
    baseline: Timing
    first: ImportTally
    again: ImportTally

    @property
    def ratio(self) -> float:
        return as_timing("", self.first).rate / self.baseline.rate


async def measure(stand: Stand, count: int, concurrency: int) -> BulkImport:
    files = stand.service.data_dir
    write_file(files / "warm.jsonl", new_ids("W", 1))
    write_file(files / "bulk.jsonl", new_ids("B", count))
    await start_bare(stand, new_ids("warm", 1), 1, with_update=False)
    await import_file(stand, files / "warm.jsonl", 1)
    await stand.until_idle()
    baseline = await start_bare(stand, new_ids("bare", count), concurrency, with_update=False,
                                label="baseline: start_workflow")
    await stand.until_idle()  # the first workflow tasks of those
    first = await import_file(stand, files / "bulk.jsonl", concurrency)
    await stand.until_idle()
    again = await import_file(stand, files / "bulk.jsonl", concurrency)
    await stand.until_idle()
    return BulkImport(baseline, first, again)


def report(figures: BulkImport, count: int, concurrency: int) -> None:
    print(f"{machine()}; {count:,} each, {concurrency} at a time")
    print(f"{'what':<40}{'per s':>9}{'seconds':>11}{'errors':>8}")
    rows = (figures.baseline, as_timing("guest-journey import", figures.first),
            as_timing("the same file again", figures.again))
    for timing in rows:
        print(f"{timing.label:<40}{timing.rate:>9.1f}{timing.seconds:>11.2f}{len(timing.errors):>8}")
    if figures.baseline.errors or figures.first.failures:
        print(f"first error: {(figures.baseline.errors or [f.error for f in figures.first.failures])[0]}")
    print(f"import: {figures.first.summary()}; again: {figures.again.summary()}")
    met = figures.ratio >= TARGET_RATIO
    print(ratio_line("import / baseline start_workflow", figures.ratio, f">= {TARGET_RATIO}", met))


async def run(count: int, concurrency: int) -> None:
    print(machine())
    async with start_stand() as stand:
        figures = await measure(stand, count, concurrency)
    report(figures, count, concurrency)
    if figures.first.counts[Outcome.started] != count or figures.again.counts[Outcome.unchanged] != count:
        raise SystemExit("the import did not start every line once, or the re-run changed something")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2_000, help="reservations and bare workflows (default 2,000)")
    parser.add_argument("--concurrency", type=int, default=32, help="starts in flight (default 32)")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.count, arguments.concurrency))


if __name__ == "__main__":
    main()
