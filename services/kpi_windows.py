"""Which KPI windows the schedule measures, in each hotel's local days, and the
activity that measures them (`record_kpi_windows`).

Every hour (`workflows.dashboard_kpis.MEASURE_AT`) the KPI schedule measures,
for each hotel in its own time zone (`hotel_timezone` of its policy) and for
all hotels together in the policy's default time zone, the day and the week
(from Monday) that are open now, so that the dashboard shows today and this
week as of the last hour; and each closed window that needs it:

- once right after it closes (its last measure was taken while it was open),
- once more when it has settled (`SETTLED_AFTER` past its end: late feedback
  and replies arrive after the day they belong to),
- and any window of the last `CATCH_UP` ones with no snapshot at all (the
  worker was down).

Each measure stores the snapshot and evaluates its alerts against the hotel's
`kpi_targets`, and every new alert is POSTed to the webhook
(`services.kpi_store.record_dashboard_guest_experience`). The dashboard only
reads what this stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from guest_journey import read_model_queries
from guest_journey.database import SessionFactory
from guest_journey.policy import JourneyPolicy, KpiTargets
from services.kpi_store import record_dashboard_guest_experience
from services.kpi_tables import KpiSnapshot, WindowKind
from workflows.dashboard_kpis import RECORD_KPI_WINDOWS, KpiWindowsInput, KpiWindowsResult

SETTLED_AFTER = timedelta(days=1)
CATCH_UP = {WindowKind.day: 14, WindowKind.week: 8}


@dataclass(frozen=True)
class KpiScope:
    """One hotel (or, `hotel_id` None, all hotels together) with its time zone and targets."""

    hotel_id: str | None
    zone: ZoneInfo
    targets: KpiTargets


@dataclass(frozen=True)
class LocalWindow:
    start: datetime
    end: datetime


def scopes_of(policy: JourneyPolicy, hotels: Sequence[str]) -> list[KpiScope]:
    """All hotels together (the policy's defaults), then each hotel with its overrides."""
    scopes = [KpiScope(None, policy.timezone, policy.kpi_targets)]
    for hotel_id in sorted(set(hotels)):
        hotel = policy.for_hotel(hotel_id)
        scopes.append(KpiScope(hotel_id, hotel.timezone, hotel.kpi_targets))
    return scopes


def local_window(kind: WindowKind, zone: ZoneInfo, day: date) -> LocalWindow:
    """The window of `kind` holding the local `day`: that day, or its week from Monday."""
    first = day if kind is WindowKind.day else day - timedelta(days=day.weekday())
    last = first + timedelta(days=1 if kind is WindowKind.day else 7)
    return LocalWindow(datetime.combine(first, time(0), tzinfo=zone), datetime.combine(last, time(0), tzinfo=zone))


def recent_windows(kind: WindowKind, zone: ZoneInfo, at: datetime) -> list[LocalWindow]:
    """The window open at `at` and the `CATCH_UP[kind]` closed ones before it, oldest first."""
    step = timedelta(days=1 if kind is WindowKind.day else 7)
    today = at.astimezone(zone).date()
    return [local_window(kind, zone, today - step * back) for back in range(CATCH_UP[kind], -1, -1)]


def due(window: LocalWindow, computed_at: datetime | None, at: datetime) -> bool:
    """Whether the schedule measures `window` at `at`, given when it was last measured."""
    if window.end > at:
        return True  # open: measured every hour
    if computed_at is None:
        return True  # never measured (or the worker was down)
    if computed_at < window.end:
        return True  # last measured while open: once more now that it has closed
    settled = window.end + SETTLED_AFTER
    return computed_at < settled <= at  # once more when it has settled


async def due_windows(
    session: AsyncSession, scope: KpiScope, kind: WindowKind, at: datetime
) -> list[LocalWindow]:
    windows = recent_windows(kind, scope.zone, at)
    hotel = col(KpiSnapshot.hotel_id)
    rows = await session.exec(
        select(KpiSnapshot.window_start, KpiSnapshot.computed_at).where(
            hotel.is_(None) if scope.hotel_id is None else hotel == scope.hotel_id,
            KpiSnapshot.window_kind == kind.value,
            col(KpiSnapshot.window_start) >= windows[0].start,
        )
    )
    measured = {start.timestamp(): computed_at for start, computed_at in rows.all()}
    return [window for window in windows if due(window, measured.get(window.start.timestamp()), at)]


async def measure_kpi_windows(
    *, session: AsyncSession, policy: JourneyPolicy, at: datetime, webhook_url: str | None = None
) -> int:
    """Measure every window due at `at`, for all hotels and each hotel; how many were measured."""
    hotels = await read_model_queries.hotel_ids(session=session)
    count = 0
    for scope in scopes_of(policy, [*hotels, *policy.hotels]):
        for kind in WindowKind:
            for window in await due_windows(session, scope, kind, at):
                await record_dashboard_guest_experience(
                    session=session, window_start=window.start, window_end=window.end, hotel_id=scope.hotel_id,
                    targets=scope.targets, webhook_url=webhook_url, now=at,
                )
                count += 1
    return count


class KpiActivities:
    def __init__(self, *, sessions: SessionFactory, policy: JourneyPolicy, webhook_url: str | None) -> None:
        self._sessions = sessions
        self._policy = policy
        self._webhook_url = webhook_url

    @activity.defn(name=RECORD_KPI_WINDOWS)
    async def record_kpi_windows(self, request: KpiWindowsInput) -> KpiWindowsResult:
        """`measure_kpi_windows` as of the run's moment."""
        async with self._sessions() as session:
            count = await measure_kpi_windows(
                session=session, policy=self._policy, at=request.moment, webhook_url=self._webhook_url
            )
        return KpiWindowsResult(snapshots=count)
