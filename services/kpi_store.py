"""Guest-experience KPIs per window, stored for the dashboard, with their alerts
(runbook: "KPIs e Alertas", `record_dashboard_guest_experience`).

A snapshot measures one window `[window_start, window_end)` of one day or one
week, for one hotel or (hotel_id None) for all:

- `satisfaction_avg`, `satisfaction_responses`: the answers to the feedback
  form's satisfaction question ("overall, how satisfied were you?", 0-10)
  received in the window;
- `nps`, `feedback_responses`: the answers to its recommendation question
  (0-10; or an NPS pushed by a snapshot), as a Net Promoter Score;
- `upsell_offered`, `upsell_accepted`, `upsell_conversion`: offers sent in the
  window (status offered, accepted or declined; dated by when the offer was
  sent, else by when it was answered) and how many of them were accepted;
- `avg_response_time_minutes`: staff replies to guests in the window
  (`communications.delivery_summary`, the runbook's <= 10 min target);
- `failure_rate`, `messages_sent`: outbound messages created in the window;
- `checkin_adoption`: journeys arriving in the window, arrival already come,
  not cancelled: the share whose digital check-in is completed;
- `journeys`: journeys, not cancelled, whose stay overlaps the window.

Figures come from aggregate queries on the read model's columns (journeys, offers) and the message
table, on SQLite and PostgreSQL; nothing is loaded journey by journey.
Recomputing a window replaces its snapshot and re-evaluates its alerts:

- threshold: a KPI misses its target (the hotel's `kpi_targets` in the policy);
- trend: a KPI got worse in each of the last three consecutive windows of the
  same kind, i.e. this window and the two before it, each against the window
  before it (four adjacent snapshots).

An alert is stored once per (kpi, hotel, window kind, window end, kind), logged
when it first appears, and POSTed as JSON to the webhook when one is given,
until the webhook has taken it.

The Prometheus KPI gauges are not set when a window is measured (a dashboard
view measures windows too): `publish_kpi_gauges` sets them from the stored
snapshots of the last closed windows, at each scrape of a process's metrics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import Column, Index, and_, case, func, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.delivery_summary import delivery_summary
from guest_journey import kpis
from guest_journey.database import UTCDateTime, utcnow
from guest_journey.journeys import CheckinStatus, Stage, UpsellStatus
from guest_journey.kpis import RULES, TREND_WINDOWS, Kpi
from guest_journey.policy import KpiTargets
from guest_journey.read_model import JourneyRecord, JourneyUpsellRecord
from guest_journey.telemetry import kpi_alert_raised, kpis_measured

logger = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_SECONDS = 10.0
SENT_OFFER_STATUSES = (UpsellStatus.offered.value, UpsellStatus.accepted.value, UpsellStatus.declined.value)


class WindowKind(StrEnum):
    day = "day"
    week = "week"

    @property
    def length(self) -> timedelta:
        return timedelta(days=1) if self is WindowKind.day else timedelta(days=7)


class AlertKind(StrEnum):
    trend = "trend"
    threshold = "threshold"


class KpiSnapshot(SQLModel, table=True):
    __tablename__ = "kpi_snapshot"
    __table_args__ = (
        Index(
            "uq_kpi_snapshot_window",
            text("coalesce(hotel_id, '')"),
            "window_kind",
            "window_start",
            unique=True,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    hotel_id: str | None = Field(default=None, index=True, max_length=64)
    window_kind: str = Field(max_length=8)
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    window_end: datetime = Field(sa_column=Column(UTCDateTime(), index=True, nullable=False))
    satisfaction_avg: float | None = None
    satisfaction_responses: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    feedback_responses: int = 0
    nps: float | None = None
    upsell_offered: int = 0
    upsell_accepted: int = 0
    upsell_conversion: float | None = None
    avg_response_time_minutes: float | None = None
    messages_sent: int = 0
    failure_rate: float | None = None
    checkin_adoption: float | None = None
    journeys: int = 0
    computed_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))

    def value(self, kpi: Kpi) -> float | None:
        measured: float | None = getattr(self, kpi.value)
        return measured


class KpiAlert(SQLModel, table=True):
    __tablename__ = "kpi_alert"
    __table_args__ = (
        Index(
            "uq_kpi_alert",
            "kpi",
            text("coalesce(hotel_id, '')"),
            "window_kind",
            "window_end",
            "kind",
            unique=True,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kpi: str = Field(max_length=32)
    hotel_id: str | None = Field(default=None, index=True, max_length=64)
    window_kind: str = Field(max_length=8)
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    window_end: datetime = Field(sa_column=Column(UTCDateTime(), index=True, nullable=False))
    kind: str = Field(max_length=16)
    value: float
    target: float | None = None
    message: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    notified_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class KpiAlertOut(BaseModel):
    """An alert as the log, the webhook and the dashboard carry it."""

    kpi: Kpi
    hotel_id: str | None
    window_kind: WindowKind
    window_start: AwareDatetime
    window_end: AwareDatetime
    kind: AlertKind
    value: float
    target: float | None
    message: str
    created_at: AwareDatetime

    @classmethod
    def of(cls, alert: KpiAlert) -> KpiAlertOut:
        return cls.model_validate(alert, from_attributes=True)


class TelemetryStatus:
    """How the last KPI computation of this process went (`/health/otel` telemetry)."""

    def __init__(self) -> None:
        self.last_error: str | None = None
        self.last_run_at: datetime | None = None

    def succeeded(self) -> None:
        self.last_error, self.last_run_at = None, utcnow()

    def failed(self, error: str) -> None:
        self.last_error, self.last_run_at = error, utcnow()

    def check(self) -> str:
        return "ok" if self.last_error is None else self.last_error


telemetry_status = TelemetryStatus()


def window_kind_of(window_start: datetime, window_end: datetime) -> WindowKind:
    """The kind of a window from its bounds: one day or one week, with offsets."""
    for name, moment in (("window_start", window_start), ("window_end", window_end)):
        if moment.tzinfo is None:
            raise ValueError(f"{name} must carry its offset")
    for kind in WindowKind:
        if window_end - window_start == kind.length:
            return kind
    raise ValueError("a KPI window is one day or one week long")


async def record_dashboard_guest_experience(
    *,
    session: AsyncSession,
    window_start: datetime,
    window_end: datetime,
    hotel_id: str | None = None,
    targets: KpiTargets | None = None,
    webhook_url: str | None = None,
    now: datetime | None = None,
) -> KpiSnapshot:
    """Measure a window, store its snapshot (replacing an earlier one), evaluate,
    store and log its alerts against `targets` (the hotel's, from the policy; the
    runbook's by default), and POST the alerts not yet delivered to `webhook_url`."""
    kind = window_kind_of(window_start, window_end)
    try:
        snapshot = await _measure(session, kind, window_start, window_end, hotel_id, now or utcnow())
        snapshot = await _store_snapshot(session, snapshot)
        findings = await _evaluate(session, snapshot, targets or KpiTargets())
        alerts = await _store_alerts(session, snapshot, findings)
    except Exception as error:
        telemetry_status.failed(f"KPI computation failed: {type(error).__name__}")
        logger.exception("guest experience KPIs not recorded",
                         extra={"hotel_id": hotel_id, "window_start": window_start.isoformat()})
        raise
    undelivered = [alert for alert in alerts if alert.notified_at is None]
    if webhook_url and undelivered:
        if not await _post_alerts(webhook_url, snapshot, undelivered):
            return snapshot
        for alert in undelivered:
            alert.notified_at = utcnow()
            session.add(alert)
        await session.commit()
    telemetry_status.succeeded()
    return snapshot


async def list_snapshots(
    *, session: AsyncSession, window_kind: WindowKind, hotel_id: str | None = None, limit: int = 30
) -> list[KpiSnapshot]:
    """The latest snapshots of one kind, newest first (the dashboard's trend)."""
    rows = await session.exec(
        select(KpiSnapshot)
        .where(_same_hotel(col(KpiSnapshot.hotel_id), hotel_id), KpiSnapshot.window_kind == window_kind.value)
        .order_by(col(KpiSnapshot.window_start).desc())
        .limit(limit)
    )
    return list(rows.all())


async def latest_closed_snapshots(*, session: AsyncSession, now: datetime | None = None) -> list[KpiSnapshot]:
    """Per hotel (and all hotels) and window kind, the snapshot of the latest window that
    had closed when it was measured (the schedule's; a dashboard view's current window,
    measured before its end, is left out)."""
    now = now or utcnow()
    complete = and_(col(KpiSnapshot.window_end) <= now, col(KpiSnapshot.computed_at) >= col(KpiSnapshot.window_end))
    hotel_key = func.coalesce(col(KpiSnapshot.hotel_id), "")
    latest = (
        select(hotel_key.label("hotel_key"), col(KpiSnapshot.window_kind),
               func.max(col(KpiSnapshot.window_start)).label("window_start"))
        .where(complete)
        .group_by(hotel_key, col(KpiSnapshot.window_kind))
        .subquery()
    )
    rows = await session.exec(
        select(KpiSnapshot).join(latest, and_(
            func.coalesce(col(KpiSnapshot.hotel_id), "") == latest.c.hotel_key,
            col(KpiSnapshot.window_kind) == latest.c.window_kind,
            col(KpiSnapshot.window_start) == latest.c.window_start,
        ))
    )
    return list(rows.all())


async def publish_kpi_gauges(*, session: AsyncSession, now: datetime | None = None) -> int:
    """Set the KPI gauges (`guest_journey.telemetry.KPI_GAUGES`) from the stored snapshots
    of `latest_closed_snapshots`; a process's metrics server calls it at each scrape, so the
    gauges show what the KPI schedule stored, in each hotel's local days.
    Returns how many snapshots were published."""
    snapshots = await latest_closed_snapshots(session=session, now=now)
    for snapshot in snapshots:
        minutes = snapshot.avg_response_time_minutes
        kpis_measured(snapshot.hotel_id, snapshot.window_kind, {
            "satisfaction": snapshot.satisfaction_avg,
            "nps": snapshot.nps,
            "upsell_conversion": snapshot.upsell_conversion,
            "avg_response_time_seconds": None if minutes is None else minutes * 60,
            "failure_rate": snapshot.failure_rate,
            "checkin_adoption": snapshot.checkin_adoption,
            "window_end": snapshot.window_end.timestamp(),
        })
    return len(snapshots)


async def list_alerts(
    *, session: AsyncSession, hotel_id: str | None = None, since: datetime | None = None, limit: int = 100
) -> list[KpiAlertOut]:
    """Alerts of one hotel (or of all hotels together), newest window first."""
    query = select(KpiAlert).where(_same_hotel(col(KpiAlert.hotel_id), hotel_id))
    if since is not None:
        query = query.where(col(KpiAlert.window_end) > since)
    rows = await session.exec(query.order_by(col(KpiAlert.window_end).desc(), col(KpiAlert.kpi)).limit(limit))
    return [KpiAlertOut.of(alert) for alert in rows.all()]


# -- measuring ----------------------------------------------------------------------


async def _measure(
    session: AsyncSession, kind: WindowKind, start: datetime, end: datetime, hotel_id: str | None, now: datetime
) -> KpiSnapshot:
    responses, promoters, detractors, satisfied, satisfaction_sum = await _feedback(session, start, end, hotel_id)
    offered, accepted = await _upsells(session, start, end, hotel_id)
    completed, past_arrival, journeys = await _journeys(session, start, end, hotel_id, now)
    delivery = await delivery_summary(session=session, since=start, until=end, hotel_id=hotel_id)
    return KpiSnapshot(
        hotel_id=hotel_id,
        window_kind=kind.value,
        window_start=start,
        window_end=end,
        satisfaction_avg=round(satisfaction_sum / satisfied, kpis.DIGITS) if satisfied else None,
        satisfaction_responses=satisfied,
        feedback_responses=responses,
        nps=kpis.net_promoter_score(promoters=promoters, detractors=detractors, responses=responses),
        upsell_offered=offered,
        upsell_accepted=accepted,
        upsell_conversion=kpis.upsell_conversion(offered=offered, accepted=accepted),
        avg_response_time_minutes=delivery.response_time_minutes.hotel_replies,
        messages_sent=delivery.total,
        failure_rate=kpis.failure_rate(failed=delivery.failed, total=delivery.total),
        checkin_adoption=kpis.checkin_adoption(completed=completed, past_arrival=past_arrival),
        journeys=journeys,
        computed_at=now,  # the moment it was measured as of: the schedule's run
    )


async def _feedback(
    session: AsyncSession, start: datetime, end: datetime, hotel_id: str | None
) -> tuple[int, int, int, int, float]:
    """(NPS answers, promoters, detractors, satisfaction answers, their sum) received in the window."""
    score, satisfaction = col(JourneyRecord.feedback_score), col(JourneyRecord.feedback_satisfaction)
    received_at = col(JourneyRecord.feedback_received_at)
    received = [received_at >= start, received_at < end, *_of_hotel(hotel_id)]
    recommended = select(
        func.count(score),
        func.coalesce(func.sum(_one_if(score >= kpis.PROMOTER_MIN)), 0),
        func.coalesce(func.sum(_one_if(score <= kpis.DETRACTOR_MAX)), 0),
    ).where(score.is_not(None), *received)
    satisfied = select(func.count(satisfaction), func.coalesce(func.sum(satisfaction), 0)).where(
        satisfaction.is_not(None), *received)
    responses, promoters, detractors = (await session.exec(recommended)).one()
    answers, total = (await session.exec(satisfied)).one()
    return int(responses), int(promoters), int(detractors), int(answers), float(total or 0)


async def _upsells(session: AsyncSession, start: datetime, end: datetime, hotel_id: str | None) -> tuple[int, int]:
    """Offers sent in the window (dated by when they were sent, else answered), and how many were accepted."""
    status, sent_at = col(JourneyUpsellRecord.status), col(JourneyUpsellRecord.sent_at)
    query = select(
        func.count(),
        func.coalesce(func.sum(_one_if(status == UpsellStatus.accepted.value)), 0),
    ).where(
        status.in_(SENT_OFFER_STATUSES), sent_at >= start, sent_at < end,
        *([] if hotel_id is None else [col(JourneyUpsellRecord.hotel_id) == hotel_id]),
    )
    offered, accepted = (await session.exec(query)).one()
    return int(offered), int(accepted)


async def _journeys(
    session: AsyncSession, start: datetime, end: datetime, hotel_id: str | None, now: datetime
) -> tuple[int, int, int]:
    checkin_status = col(JourneyRecord.checkin_status)
    arrival, departure = col(JourneyRecord.arrival), col(JourneyRecord.departure)
    arrived = and_(arrival >= start, arrival < end, arrival <= now)
    query = select(
        func.coalesce(func.sum(_one_if(and_(arrived, checkin_status == CheckinStatus.completed.value))), 0),
        func.coalesce(func.sum(_one_if(arrived)), 0),
        func.coalesce(func.sum(_one_if(and_(arrival < end, departure > start))), 0),
    ).where(JourneyRecord.stage != Stage.cancelled.value, *_of_hotel(hotel_id))
    completed, past_arrival, journeys = (await session.exec(query)).one()
    return int(completed), int(past_arrival), int(journeys)


def _of_hotel(hotel_id: str | None) -> list[ColumnElement[bool]]:
    return [] if hotel_id is None else [col(JourneyRecord.hotel_id) == hotel_id]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _one_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _same_hotel(column: Any, hotel_id: str | None) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column.is_(None) if hotel_id is None else column == hotel_id
    return result


# -- storing ------------------------------------------------------------------------


async def _existing_snapshot(session: AsyncSession, snapshot: KpiSnapshot) -> KpiSnapshot | None:
    rows = await session.exec(
        select(KpiSnapshot).where(
            _same_hotel(col(KpiSnapshot.hotel_id), snapshot.hotel_id),
            KpiSnapshot.window_kind == snapshot.window_kind,
            KpiSnapshot.window_start == snapshot.window_start,
        )
    )
    return rows.first()


async def _store_snapshot(session: AsyncSession, snapshot: KpiSnapshot) -> KpiSnapshot:
    """Insert the snapshot, or replace the figures of the window's earlier one."""
    figures = snapshot.model_dump(exclude={"id"})
    for _ in range(2):
        stored = await _existing_snapshot(session, snapshot)
        if stored is not None:
            stored.sqlmodel_update(figures)
            snapshot = stored
        session.add(snapshot)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            snapshot = KpiSnapshot(**figures)
            continue
        await session.refresh(snapshot)
        return snapshot
    raise RuntimeError("the KPI snapshot kept colliding with concurrent writers")


@dataclass(frozen=True)
class _Finding:
    kpi: Kpi
    kind: AlertKind
    value: float
    target: float | None
    message: str


async def _evaluate(session: AsyncSession, snapshot: KpiSnapshot, targets: KpiTargets) -> list[_Finding]:
    findings: list[_Finding] = []
    scope = f"hotel {snapshot.hotel_id}" if snapshot.hotel_id else "all hotels"
    window = f"{snapshot.window_kind} from {_iso(snapshot.window_start)}"
    for kpi, rule in RULES.items():
        value, target = snapshot.value(kpi), rule.target(targets)
        if value is not None and target is not None and rule.breached(value, targets):
            relation = "below the minimum" if rule.higher_is_better else "above the maximum"
            findings.append(_Finding(
                kpi, AlertKind.threshold, value, target,
                f"{kpi.value} is {value:g}, {relation} {target:g} ({scope}, {window})",
            ))
    history = [*await _previous_windows(session, snapshot), snapshot]
    for kpi, rule in RULES.items():
        values = [earlier.value(kpi) for earlier in history]
        if kpis.declining(values, TREND_WINDOWS, higher_is_better=rule.higher_is_better):
            value = snapshot.value(kpi)
            assert value is not None
            direction = "fell" if rule.higher_is_better else "rose"
            series = " -> ".join(f"{earlier:g}" for earlier in values[-(TREND_WINDOWS + 1):] if earlier is not None)
            findings.append(_Finding(
                kpi, AlertKind.trend, value, rule.target(targets),
                f"{kpi.value} {direction} in each of the last {TREND_WINDOWS} {snapshot.window_kind} windows: "
                f"{series} ({scope}, up to {_iso(snapshot.window_end)})",
            ))
    return findings


async def _previous_windows(session: AsyncSession, snapshot: KpiSnapshot) -> list[KpiSnapshot]:
    """The adjacent earlier windows of the same kind and hotel, oldest first."""
    rows = await session.exec(
        select(KpiSnapshot)
        .where(
            _same_hotel(col(KpiSnapshot.hotel_id), snapshot.hotel_id),
            KpiSnapshot.window_kind == snapshot.window_kind,
            col(KpiSnapshot.window_start) < snapshot.window_start,
        )
        .order_by(col(KpiSnapshot.window_start).desc())
        .limit(TREND_WINDOWS)
    )
    adjacent: list[KpiSnapshot] = []
    following = snapshot.window_start
    for earlier in rows.all():
        if earlier.window_end != following:
            break
        adjacent.append(earlier)
        following = earlier.window_start
    return adjacent[::-1]


async def _store_alerts(session: AsyncSession, snapshot: KpiSnapshot, findings: list[_Finding]) -> list[KpiAlert]:
    """Make the window's stored alerts what was found now: new ones added (and
    logged), standing ones updated, ones that no longer hold removed."""
    rows = await session.exec(
        select(KpiAlert).where(
            _same_hotel(col(KpiAlert.hotel_id), snapshot.hotel_id),
            KpiAlert.window_kind == snapshot.window_kind,
            KpiAlert.window_end == snapshot.window_end,
        )
    )
    stored = {(alert.kpi, alert.kind): alert for alert in rows.all()}
    alerts: list[KpiAlert] = []
    for finding in findings:
        alert = stored.pop((finding.kpi.value, finding.kind.value), None)
        if alert is None:
            alert = KpiAlert(
                kpi=finding.kpi.value, hotel_id=snapshot.hotel_id, window_kind=snapshot.window_kind,
                window_start=snapshot.window_start, window_end=snapshot.window_end, kind=finding.kind.value,
                value=finding.value, target=finding.target, message=finding.message,
            )
            logger.warning(
                "guest experience KPI alert: %s", finding.message,
                extra={"kpi": finding.kpi.value, "alert_kind": finding.kind.value, "hotel_id": snapshot.hotel_id,
                       "value": finding.value, "target": finding.target,
                       "window_end": _iso(snapshot.window_end)},
            )
            kpi_alert_raised(finding.kpi.value, finding.kind.value, snapshot.hotel_id)
        else:
            alert.value, alert.target, alert.message = finding.value, finding.target, finding.message
        session.add(alert)
        alerts.append(alert)
    for gone in stored.values():
        await session.delete(gone)
    await session.commit()
    return alerts


async def _post_alerts(url: str, snapshot: KpiSnapshot, alerts: list[KpiAlert]) -> bool:
    """POST the alerts as JSON; True when the receiver took them (2xx)."""
    payload = {
        "source": "guest-journey",
        "hotel_id": snapshot.hotel_id,
        "window_kind": snapshot.window_kind,
        "window_start": _iso(snapshot.window_start),
        "window_end": _iso(snapshot.window_end),
        "alerts": [KpiAlertOut.of(alert).model_dump(mode="json") for alert in alerts],
    }
    try:
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
            answer = await client.post(url, json=payload)
            answer.raise_for_status()
    except httpx.HTTPError as error:
        detail = f"KPI alert webhook failed: {type(error).__name__}"
        if isinstance(error, httpx.HTTPStatusError):
            detail = f"KPI alert webhook answered {error.response.status_code}"
        telemetry_status.failed(detail)
        logger.error(detail, extra={"alerts": len(alerts), "hotel_id": snapshot.hotel_id})
        return False
    return True
