"""The bench scripts still run: each one, on a load of a few workflows, on one
test stand (`guest-journey dev` and a bare worker). No figure is judged here;
`docs/performance.md` says how the scripts are run for real."""

from __future__ import annotations

import pytest

from bench import (
    analytics,
    bulk_import,
    event_to_visible,
    intake,
    live_journeys,
    read,
    start_shapes,
    whole_stays,
)
from bench.stand import start_stand


async def test_the_service_benches_run_on_a_few_workflows(capsys: pytest.CaptureFixture[str]) -> None:
    async with start_stand() as stand:
        started = await intake.measure(stand, count=2, concurrency=2)
        live = await live_journeys.measure(stand, count=3, warm=1, concurrency=2)
        events = await event_to_visible.measure(stand, live=2, events=1, concurrency=1)
        reads = await read.measure(stand, rate=10, seconds=0.3, live=2)
        shapes = await start_shapes.measure(stand, count=2, concurrency=2)
    intake.report(started, count=2, concurrency=2)
    live_journeys.report(live, concurrency=2, seconds=0)
    event_to_visible.report(events, live=2, events=1, concurrency=1)
    read.report(reads, rate=10, seconds=0.3, live=2)
    start_shapes.report(shapes, count=2, concurrency=2)

    timings = [started.baseline, started.with_update, started.intake, live.bare, live.journeys,
               events.baseline, events.visible, reads.baseline, reads.reads,
               *(timing for timing, _ in shapes)]
    assert [timing.errors for timing in timings] == [[]] * len(timings)
    assert live.all_accepted
    assert events.journey_reads and events.bare_reads
    printed = capsys.readouterr().out
    for line in ("intake / baseline =", "journey RSS / bare RSS per 1,000 cached =",
                 "p99 event to visible / baseline p99 =", "p99 read / baseline p99"):
        assert line in printed


async def test_the_analytics_bench_runs_on_a_few_messages(capsys: pytest.CaptureFixture[str]) -> None:
    await analytics.run(count=300, runs=1, postgres=None)
    printed = capsys.readouterr().out
    assert "300 messages and 100 journeys loaded" in printed
    assert printed.count("dashboard:") == 2


async def test_the_whole_stays_bench_runs_on_one_stay(capsys: pytest.CaptureFixture[str]) -> None:
    await whole_stays.run(count=1, rounds=2)
    printed = capsys.readouterr().out
    assert "whole stays / baseline, median of 2 =" in printed
    rounds = [line.split()[0] for line in printed.splitlines() if len(line.split()) == 8]
    assert rounds == ["1", "2"]  # a line per round


async def test_the_bulk_import_bench_runs_on_a_few_reservations(capsys: pytest.CaptureFixture[str]) -> None:
    async with start_stand() as stand:
        figures = await bulk_import.measure(stand, count=3, concurrency=2)
    bulk_import.report(figures, count=3, concurrency=2)
    assert figures.baseline.errors == [] and figures.first.failures == []
    assert figures.first.summary() == "3 started, 0 updated, 0 unchanged, 0 failed"
    assert figures.again.summary() == "0 started, 0 updated, 3 unchanged, 0 failed"
    assert "import / baseline start_workflow =" in capsys.readouterr().out
