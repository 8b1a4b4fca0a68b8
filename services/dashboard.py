"""The data of the executive dashboard (`/analytics`, card "Jornada digital"):
the period, its windows, their stored snapshots and the period's figures. The
card's presentation is `api.staff.dashboard_card`.

The dashboard shows one hotel (or all hotels together) over a period of
whole days, in windows of a day or a week (the hotel's local midnights, its
policy's `hotel_timezone`; all hotels use the policy's default time zone).

Per window, the figures are the KPI snapshots the KPI schedule stores every
hour in each hotel's local days (`services.kpi_windows`: the open day and week
as of the last hour, closed windows once closed and once settled). The
dashboard only reads: it writes no snapshot and raises no alert; a window the
schedule has not measured yet shows no figures, and "Medir agora" runs the
schedule's workflow at once (`services.kpi_schedule.measure_kpis_now`).

The card's figures for the whole period come from the same windows:

- satisfaction: the mean score and the NPS of every answer in the period
  (the windows' figures weighted by their number of answers: exact);
- upsell conversion: offers accepted / offers sent, summed over the windows;
- average response time, and the delivery failure rate by channel:
  `communications.delivery_summary` over the period (staff replies only);
- online check-in adoption: journeys arrived in the period (not cancelled)
  whose digital check-in is completed, over all of them (`checkin_adoption`
  below; a `kpi_snapshot` keeps only the ratio per window, not its counts).

Targets: the policy's `kpi_targets` for the hotel shown (its overrides
applied), or the policy's defaults for all hotels together; the schedule's
alerts use the same (`guest_journey.policy.KpiTargets`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.delivery_summary import DeliverySummary, delivery_summary
from guest_journey import kpis, read_model_queries
from guest_journey.kpis import RULES, Kpi
from guest_journey.policy import KpiTargets
from services.kpi_alerts import list_alerts
from services.kpi_tables import KpiAlertOut, KpiSnapshot, WindowKind

DEFAULT_WINDOWS = {WindowKind.day: 14, WindowKind.week: 8}
MAX_WINDOWS = {WindowKind.day: 92, WindowKind.week: 53}
ALERTS_SHOWN = 20


# -- period and windows -----------------------------------------------------------


class PeriodError(ValueError):
    """The dashboard's filters do not make a period; the message names the field."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    label: str


@dataclass(frozen=True)
class Period:
    """Whole local days `first`..`last`, cut into windows of one `kind`."""

    first: date
    last: date
    kind: WindowKind
    zone: ZoneInfo

    @classmethod
    def choose(
        cls, *, since: date | None, until: date | None, kind: WindowKind, zone: ZoneInfo, now: datetime
    ) -> Period:
        today = now.astimezone(zone).date()
        last = min(until or today, today)
        if since is not None and since > today:
            raise PeriodError("De: o período começa no futuro")
        if since is not None and until is not None and until < since:
            raise PeriodError("Até: não pode ser antes de De")
        if kind is WindowKind.week:
            last_start = last - timedelta(days=last.weekday())
            first = since or last_start - timedelta(weeks=DEFAULT_WINDOWS[kind] - 1)
            first -= timedelta(days=first.weekday())
            last = last_start + timedelta(days=6)
            count = (last - first).days // 7 + 1
        else:
            first = since or last - timedelta(days=DEFAULT_WINDOWS[kind] - 1)
            count = (last - first).days + 1
        if count > MAX_WINDOWS[kind]:
            unit = "dias" if kind is WindowKind.day else "semanas"
            raise PeriodError(f"De: no máximo {MAX_WINDOWS[kind]} {unit}; escolha um período menor")
        return cls(first=first, last=last, kind=kind, zone=zone)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=self.zone)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=self.zone)

    def windows(self, now: datetime) -> list[Window]:
        """The windows that have begun, oldest first."""
        step = timedelta(days=1 if self.kind is WindowKind.day else 7)
        windows, day = [], self.first
        while day <= self.last:
            start = datetime.combine(day, time(0), tzinfo=self.zone)
            if start > now:
                break
            end = datetime.combine(day + step, time(0), tzinfo=self.zone)
            label = day.strftime("%d/%m") if self.kind is WindowKind.day else f"sem. {day:%d/%m}"
            windows.append(Window(start=start, end=end, label=label))
            day += step
        return windows


# -- the dashboard ----------------------------------------------------------------


@dataclass(frozen=True)
class SeriesPoint:
    label: str
    value: float | None


@dataclass
class Dashboard:
    hotel_id: str | None
    period: Period
    targets: KpiTargets
    windows: list[Window]
    snapshots: list[KpiSnapshot]
    satisfaction: float | None
    nps: float | None
    responses: int
    satisfaction_responses: int
    upsell_offered: int
    upsell_accepted: int
    checkin_completed: int
    checkin_arrived: int
    delivery: DeliverySummary
    alerts: list[KpiAlertOut] = field(default_factory=list)

    @property
    def measured_at(self) -> datetime | None:
        """When the schedule last measured one of the windows shown (None: never)."""
        stored = [snapshot.computed_at for snapshot in self.snapshots if snapshot.id is not None]
        return max(stored) if stored else None

    @property
    def upsell_conversion(self) -> float | None:
        return kpis.upsell_conversion(offered=self.upsell_offered, accepted=self.upsell_accepted)

    @property
    def response_minutes(self) -> float | None:
        return self.delivery.response_time_minutes.hotel_replies

    @property
    def checkin_adoption(self) -> float | None:
        return kpis.checkin_adoption(completed=self.checkin_completed, past_arrival=self.checkin_arrived)

    @property
    def failure_rate(self) -> float | None:
        return kpis.failure_rate(failed=self.delivery.failed, total=self.delivery.total)

    @property
    def rows(self) -> list[tuple[Window, KpiSnapshot]]:
        return list(zip(self.windows, self.snapshots, strict=True))

    def series(self, kpi: Kpi) -> list[SeriesPoint]:
        return [SeriesPoint(window.label, snapshot.value(kpi))
                for window, snapshot in zip(self.windows, self.snapshots, strict=True)]

    def declining(self, kpi: Kpi) -> bool:
        """Worse in each of the last three windows (the runbook's trend alert)."""
        values = [point.value for point in self.series(kpi)]
        return kpis.declining(values, kpis.TREND_WINDOWS, higher_is_better=RULES[kpi].higher_is_better)

    def trend(self, kpi: Kpi) -> tuple[float, float] | None:
        """The last two measured windows' values (earlier, later), for the card's arrow."""
        measured = [point.value for point in self.series(kpi) if point.value is not None]
        return (measured[-2], measured[-1]) if len(measured) >= 2 else None


async def build_dashboard(
    *, session: AsyncSession, hotel_id: str | None, period: Period, targets: KpiTargets, now: datetime
) -> Dashboard:
    windows = period.windows(now)
    snapshots = await window_snapshots(session=session, hotel_id=hotel_id, kind=period.kind,
                                       windows=windows, now=now)
    start = windows[0].start if windows else period.start
    end = min(windows[-1].end, now) if windows else period.start
    responses = sum(snapshot.feedback_responses for snapshot in snapshots)
    satisfaction_responses = sum(snapshot.satisfaction_responses for snapshot in snapshots)
    counts = await read_model_queries.journey_counts(session=session, start=start, end=end, hotel_id=hotel_id,
                                                     now=now)
    completed, arrived = counts.checked_in, counts.arrived
    return Dashboard(
        hotel_id=hotel_id,
        period=period,
        targets=targets,
        windows=windows,
        snapshots=snapshots,
        satisfaction=_weighted(snapshots, "satisfaction_avg", "satisfaction_responses", 4),
        nps=_weighted(snapshots, "nps", "feedback_responses", 4),
        responses=responses,
        satisfaction_responses=satisfaction_responses,
        upsell_offered=sum(snapshot.upsell_offered for snapshot in snapshots),
        upsell_accepted=sum(snapshot.upsell_accepted for snapshot in snapshots),
        checkin_completed=completed,
        checkin_arrived=arrived,
        delivery=await delivery_summary(session=session, since=start.astimezone(UTC),
                                        until=end.astimezone(UTC), hotel_id=hotel_id),
        alerts=[alert for alert in await list_alerts(session=session, hotel_id=hotel_id, since=start, limit=100)
                if alert.window_kind == period.kind.value][:ALERTS_SHOWN],
    )


async def window_snapshots(
    *, session: AsyncSession, hotel_id: str | None, kind: WindowKind, windows: list[Window], now: datetime
) -> list[KpiSnapshot]:
    """One snapshot per window, oldest first, as the schedule stored it; a window it has
    not measured yet gets an empty one (no figures, no `id`: never stored)."""
    if not windows:
        return []
    stored = await session.exec(
        select(KpiSnapshot).where(
            col(KpiSnapshot.hotel_id).is_(None) if hotel_id is None else col(KpiSnapshot.hotel_id) == hotel_id,
            KpiSnapshot.window_kind == kind.value,
            col(KpiSnapshot.window_start) >= windows[0].start,
            col(KpiSnapshot.window_start) <= windows[-1].start,
        )
    )
    by_start = {snapshot.window_start.timestamp(): snapshot for snapshot in stored.all()}
    return [by_start.get(window.start.timestamp()) or _not_measured(hotel_id, kind, window) for window in windows]


def _not_measured(hotel_id: str | None, kind: WindowKind, window: Window) -> KpiSnapshot:
    return KpiSnapshot(hotel_id=hotel_id, window_kind=kind.value, window_start=window.start, window_end=window.end)


async def known_hotels(*, session: AsyncSession, configured: list[str]) -> list[str]:
    return sorted({*await read_model_queries.hotel_ids(session=session), *configured})


def _weighted(snapshots: list[KpiSnapshot], name: str, weight_name: str, digits: int) -> float | None:
    """The windows' figure over the period, each window weighted by its number of answers: exact."""
    pairs = [(getattr(snapshot, name), getattr(snapshot, weight_name)) for snapshot in snapshots]
    pairs = [(value, weight) for value, weight in pairs if value is not None and weight]
    total = sum(weight for _, weight in pairs)
    return round(sum(value * weight for value, weight in pairs) / total, digits) if total else None


