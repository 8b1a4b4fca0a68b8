"""The KPI schedule: the workflow it starts every hour, the windows it measures in
each hotel's local days, and the schedule itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from temporalio.client import ScheduleSpec, ScheduleUpdate, ScheduleUpdateInput

from guest_journey.policy import JourneyPolicy
from services.kpi_schedule import ensure_kpi_schedule
from services.kpi_tables import KpiSnapshot, WindowKind
from services.kpi_windows import CATCH_UP, SETTLED_AFTER, LocalWindow, due, recent_windows
from tests.workflows.journeys import booking, end, now, put, quiet_policy
from workflows.dashboard_kpis import (
    MEASURE_AT,
    SCHEDULE_ID,
    DashboardKpisInput,
    DashboardKpisWorkflow,
)

TOKYO = ZoneInfo("Asia/Tokyo")
TUESDAY = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)  # 09:30 in Tokyo, Monday 21:30 in São Paulo
WINDOWS_PER_SCOPE = CATCH_UP[WindowKind.day] + 1 + CATCH_UP[WindowKind.week] + 1


def test_windows_are_the_hotels_local_days_and_weeks_from_monday():
    days = recent_windows(WindowKind.day, TOKYO, TUESDAY)
    weeks = recent_windows(WindowKind.week, TOKYO, TUESDAY)
    assert days[-1] == LocalWindow(datetime(2026, 12, 1, tzinfo=TOKYO), datetime(2026, 12, 2, tzinfo=TOKYO))
    assert days[-1].start.astimezone(UTC) == datetime(2026, 11, 30, 15, tzinfo=UTC)
    assert len(days) == CATCH_UP[WindowKind.day] + 1 and days[0].start == datetime(2026, 11, 17, tzinfo=TOKYO)
    assert weeks[-1].start == datetime(2026, 11, 30, tzinfo=TOKYO)  # the Monday
    assert all(later.start == earlier.end for earlier, later in zip(days, days[1:], strict=False))
    sao_paulo = recent_windows(WindowKind.day, ZoneInfo("America/Sao_Paulo"), TUESDAY)
    assert sao_paulo[-1].start == datetime(2026, 11, 30, tzinfo=ZoneInfo("America/Sao_Paulo"))  # still Monday there


def test_a_window_is_measured_while_open_once_closed_and_once_settled():
    window = LocalWindow(TUESDAY - timedelta(days=1), TUESDAY)
    settled = window.end + SETTLED_AFTER
    assert due(LocalWindow(TUESDAY, TUESDAY + timedelta(days=1)), TUESDAY, TUESDAY + timedelta(hours=1))  # open
    assert due(window, None, TUESDAY)  # never measured
    assert due(window, TUESDAY - timedelta(minutes=45), TUESDAY + timedelta(minutes=15))  # last measured open
    assert not due(window, TUESDAY + timedelta(minutes=15), TUESDAY + timedelta(hours=5))  # closed, measured
    assert due(window, TUESDAY + timedelta(minutes=15), settled + timedelta(minutes=15))  # settled now
    assert not due(window, settled + timedelta(minutes=15), settled + timedelta(hours=3))  # settled and measured


async def test_a_run_measures_each_hotel_in_its_local_days_and_the_next_hour_only_what_is_due(
    env, worker, settings, sessions
):
    policy = JourneyPolicy(hotel_timezone="UTC", hotels={"hotel-tokyo": {"hotel_timezone": "Asia/Tokyo"}})
    async with worker(policy=policy):
        reservation = booking(await now(env), arrive_in=timedelta(days=20))
        await put(env.client, settings.task_queue, reservation, quiet_policy())
        await end(env, reservation.reservation_id)
        first = await env.client.execute_workflow(
            DashboardKpisWorkflow.run, DashboardKpisInput(at=TUESDAY),
            id=f"kpis-{uuid.uuid4()}", task_queue=settings.task_queue,
        )
        next_hour = await env.client.execute_workflow(
            DashboardKpisWorkflow.run, DashboardKpisInput(at=TUESDAY + timedelta(hours=1)),
            id=f"kpis-{uuid.uuid4()}", task_queue=settings.task_queue,
        )
    scopes = 3  # all hotels, the reservation's hotel-1, and hotel-tokyo of the policy
    assert first.snapshots == scopes * WINDOWS_PER_SCOPE  # nothing stored yet: the catch-up windows too
    assert next_hour.snapshots == scopes * 2  # only the open day and week
    async with sessions() as session:
        tokyo_days = (await session.exec(
            select(KpiSnapshot.window_start).where(KpiSnapshot.hotel_id == "hotel-tokyo",
                                                   KpiSnapshot.window_kind == "day")
            .order_by(col(KpiSnapshot.window_start).desc())
        )).all()
        all_days = (await session.exec(
            select(KpiSnapshot.window_start).where(col(KpiSnapshot.hotel_id).is_(None),
                                                   KpiSnapshot.window_kind == "day")
            .order_by(col(KpiSnapshot.window_start).desc())
        )).all()
    assert tokyo_days[0] == datetime(2026, 11, 30, 15, tzinfo=UTC)  # Tokyo's 1 December
    assert all_days[0] == datetime(2026, 12, 1, tzinfo=UTC)


async def test_the_worker_creates_the_hourly_schedule_once_and_brings_an_older_one_up_to_date(dev_env, settings):
    created = await ensure_kpi_schedule(dev_env.client, settings.task_queue)
    handle = dev_env.client.get_schedule_handle(SCHEDULE_ID)

    def daily(current: ScheduleUpdateInput) -> ScheduleUpdate:  # as an earlier release made it
        current.description.schedule.spec = ScheduleSpec(cron_expressions=["15 0 * * *"])
        return ScheduleUpdate(schedule=current.description.schedule)

    await handle.update(daily)
    again = await ensure_kpi_schedule(dev_env.client, settings.task_queue)
    description = await handle.describe()
    await handle.delete()
    assert created and not again
    action = description.schedule.action
    assert action.workflow == "DashboardKpisWorkflow" and action.task_queue == settings.task_queue
    [calendar] = description.schedule.spec.calendars  # the server keeps MEASURE_AT as a calendar
    assert [r.start for r in calendar.minute] == [15]
    assert [(r.start, r.end) for r in calendar.hour] == [(0, 23)]  # every hour
    assert MEASURE_AT == "15 * * * *"
