"""`guest-journey demo`: a small simulation run through the command's function. The
dashboard (`services.dashboard`, what `/analytics` reads) shows, over the simulated
weeks, exactly the KPIs the seed implies; everything stored lies in the past; and
the same seed does not run twice into one data dir."""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from commands.demo import DEMO_LOG, DemoRefused, run, run_demo
from commands.demo_report import DemoFigures, report, truth
from communications.message_store import MessageRecord
from guest_journey.database import SessionFactory
from guest_journey.journeys import Stage
from guest_journey.read_model import JourneyRecord
from guest_journey.settings import Settings

RUN_TIMEOUT = 240.0
SEED = 7


def assert_same(dashboard: DemoFigures, expected: DemoFigures) -> None:
    """Counts exactly; the figures within the rounding the report prints them with."""
    assert (dashboard.checkin_completed, dashboard.checkin_arrived) == (
        expected.checkin_completed, expected.checkin_arrived)
    assert (dashboard.upsell_accepted, dashboard.upsell_offered) == (
        expected.upsell_accepted, expected.upsell_offered)
    assert dashboard.responses == expected.responses
    assert dashboard.checkin_adoption == expected.checkin_adoption
    assert dashboard.upsell_conversion == expected.upsell_conversion
    assert dashboard.nps == pytest.approx(expected.nps, abs=0.05)
    assert dashboard.satisfaction == pytest.approx(expected.satisfaction, abs=0.005)
    assert dashboard.response_minutes == pytest.approx(expected.response_minutes, abs=0.05)


async def test_the_dashboard_shows_the_kpis_the_seed_implies(settings: Settings, sessions: SessionFactory) -> None:
    async with asyncio.timeout(RUN_TIMEOUT):
        outcome = await run_demo(settings, hotels=2, guests=40, weeks=2, seed=SEED)

    assert outcome.failed == 0
    draws = outcome.draws
    total = truth(draws.total)
    assert total.checkin_arrived == 40 and total.upsell_offered > 0 and total.responses > 0
    assert total.response_minutes is not None and total.checkin_adoption is not None
    assert_same(outcome.figures[None], total)
    for hotel in draws.hotels:
        assert_same(outcome.figures[hotel], truth(draws.by_hotel[hotel]))

    table = report(draws, outcome.figures, seed=SEED, simulated=outcome.simulated, shift=outcome.shift,
                   seconds=outcome.seconds, failed=outcome.failed)
    check_in = f"{total.checkin_adoption * 100:.1f} % ({total.checkin_completed}/40)"
    assert table.count(check_in) >= 2  # the truth and the dashboard, side by side
    assert f"{total.response_minutes:.1f} min" in table

    async with sessions() as session:
        stages = (await session.exec(select(JourneyRecord.stage, func.count()).group_by(JourneyRecord.stage))).all()
        latest = (await session.exec(select(func.max(MessageRecord.created_at)))).one()
        staff_replies = (await session.exec(select(func.count()).where(
            col(MessageRecord.step_key).startswith("manual:")))).one()
    assert dict(stages) == {Stage.completed.value: 40}  # nothing left running in a Temporal that is gone
    assert latest is not None and latest.replace(tzinfo=UTC) <= datetime.now(UTC)
    assert staff_replies == draws.total.replies  # each guest's message answered once

    with pytest.raises(DemoRefused, match=f"seed {SEED} already"):
        await run_demo(settings, hotels=2, guests=40, weeks=2, seed=SEED)


def test_the_command_keeps_the_service_s_log_in_the_data_dir_and_the_terminal_for_its_bar(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Thousands of "kept in the local outbox" lines would bury the progress bar."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        status = run(settings, args=argparse.Namespace(hotels=1, guests=3, weeks=1, seed=SEED + 1))
    finally:
        root.handlers[:], root.level = handlers, level
    terminal = capsys.readouterr()
    assert status == 0, terminal.err
    assert str(settings.data_dir / DEMO_LOG) in terminal.err and "ETA" in terminal.err
    assert "kept in the local outbox" not in terminal.err
    assert "kept in the local outbox" in (settings.data_dir / DEMO_LOG).read_text()
    assert "online check-in" in terminal.out  # the report
