"""The daily KPI snapshots: the workflow the schedule starts, and the schedule itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from services.kpi_schedule import ensure_kpi_schedule
from services.kpi_store import KpiSnapshot
from tests.workflows.journeys import booking, end, now, put, quiet_policy
from workflows.dashboard_kpis import (
    DAILY_AT,
    SCHEDULE_ID,
    DashboardKpisInput,
    DashboardKpisWorkflow,
)

MONDAY = datetime(2026, 11, 30, tzinfo=UTC)


async def test_a_run_records_the_day_and_on_mondays_the_week_for_each_hotel_and_all(
    env, worker, settings, sessions
):
    async with worker():
        reservation = booking(await now(env), arrive_in=timedelta(days=20))
        await put(env.client, settings.task_queue, reservation, quiet_policy())
        await end(env, reservation.reservation_id)
        result = await env.client.execute_workflow(
            DashboardKpisWorkflow.run, DashboardKpisInput(window_end=MONDAY),
            id=f"kpis-{uuid.uuid4()}", task_queue=settings.task_queue,
        )
        tuesday = await env.client.execute_workflow(
            DashboardKpisWorkflow.run, DashboardKpisInput(window_end=MONDAY + timedelta(days=1)),
            id=f"kpis-{uuid.uuid4()}", task_queue=settings.task_queue,
        )
    assert result.snapshots == 4  # day and week, for hotel-1 and for all hotels
    assert tuesday.snapshots == 2  # only the day
    async with sessions() as session:
        stored = (await session.exec(select(KpiSnapshot.window_kind, KpiSnapshot.hotel_id))).all()
    assert sorted((kind, hotel or "") for kind, hotel in stored) == [
        ("day", ""), ("day", ""), ("day", "hotel-1"), ("day", "hotel-1"), ("week", ""), ("week", "hotel-1"),
    ]


async def test_the_worker_creates_the_daily_schedule_once(dev_env, settings):
    created = await ensure_kpi_schedule(dev_env.client, settings.task_queue)
    again = await ensure_kpi_schedule(dev_env.client, settings.task_queue)
    description = await dev_env.client.get_schedule_handle(SCHEDULE_ID).describe()
    await dev_env.client.get_schedule_handle(SCHEDULE_ID).delete()
    assert created and not again
    action = description.schedule.action
    assert action.workflow == "DashboardKpisWorkflow" and action.task_queue == settings.task_queue
    [calendar] = description.schedule.spec.calendars  # the server keeps DAILY_AT as a calendar
    assert [r.start for r in calendar.hour] == [0] and [r.start for r in calendar.minute] == [15]
    assert DAILY_AT == "15 0 * * *"
