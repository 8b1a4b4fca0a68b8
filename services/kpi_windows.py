"""Satisfaction telemetry on a schedule: each day's (and each week's) KPI
snapshots, for every hotel and for all hotels together."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import select
from temporalio import activity

from guest_journey.database import SessionFactory
from guest_journey.read_model import JourneyRecord
from services.kpi_store import record_dashboard_guest_experience
from workflows.dashboard_kpis import RECORD_KPI_WINDOWS, KpiWindowsInput, KpiWindowsResult

DAY = timedelta(days=1)
WEEK = timedelta(days=7)


def windows_ending(window_end: datetime) -> list[tuple[datetime, datetime]]:
    windows = [(window_end - DAY, window_end)]
    if window_end.weekday() == 0:  # a Monday closes the week
        windows.append((window_end - WEEK, window_end))
    return windows


class KpiActivities:
    def __init__(self, *, sessions: SessionFactory, webhook_url: str | None) -> None:
        self._sessions = sessions
        self._webhook_url = webhook_url

    @activity.defn(name=RECORD_KPI_WINDOWS)
    async def record_kpi_windows(self, request: KpiWindowsInput) -> KpiWindowsResult:
        """`record_dashboard_guest_experience` for the windows that just closed."""
        async with self._sessions() as session:
            hotels = (await session.exec(select(JourneyRecord.hotel_id).distinct())).all()
            count = 0
            for start, end in windows_ending(request.window_end):
                for hotel_id in [None, *sorted(hotels)]:
                    await record_dashboard_guest_experience(
                        session=session, window_start=start, window_end=end,
                        hotel_id=hotel_id, webhook_url=self._webhook_url,
                    )
                    count += 1
        return KpiWindowsResult(snapshots=count)
