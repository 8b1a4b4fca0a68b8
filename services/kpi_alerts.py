"""KPI alerts on a stored snapshot: evaluated, stored, logged, posted, listed.

- threshold: a KPI misses its target (the hotel's `kpi_targets` in the policy);
- trend: a KPI got worse in each of the last three consecutive windows of the
  same kind, i.e. this window and the two before it, each against the window
  before it (four adjacent snapshots).

An alert is stored once per (kpi, hotel, window kind, window end, kind), logged
when it first appears, and POSTed as JSON to the webhook when one is given,
until the webhook has taken it. Re-evaluating a window makes its stored alerts
what holds now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey import kpis
from guest_journey.kpis import RULES, TREND_WINDOWS, Kpi
from guest_journey.policy import KpiTargets
from guest_journey.telemetry import kpi_alert_raised
from services.kpi_tables import AlertKind, KpiAlert, KpiAlertOut, KpiSnapshot, same_hotel

logger = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Finding:
    """An alert found on a snapshot, before it is stored."""

    kpi: Kpi
    kind: AlertKind
    value: float
    target: float | None
    message: str


async def evaluate_alerts(*, session: AsyncSession, snapshot: KpiSnapshot, targets: KpiTargets) -> list[Finding]:
    """The snapshot's threshold alerts against `targets`, then its trend alerts
    against the adjacent earlier windows stored."""
    findings: list[Finding] = []
    scope = f"hotel {snapshot.hotel_id}" if snapshot.hotel_id else "all hotels"
    window = f"{snapshot.window_kind} from {_iso(snapshot.window_start)}"
    for kpi, rule in RULES.items():
        value, target = snapshot.value(kpi), rule.target(targets)
        if value is not None and target is not None and rule.breached(value, targets):
            relation = "below the minimum" if rule.higher_is_better else "above the maximum"
            findings.append(Finding(
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
            findings.append(Finding(
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
            same_hotel(col(KpiSnapshot.hotel_id), snapshot.hotel_id),
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


async def store_alerts(*, session: AsyncSession, snapshot: KpiSnapshot, findings: list[Finding]) -> list[KpiAlert]:
    """Make the window's stored alerts what was found now: new ones added (and
    logged), standing ones updated, ones that no longer hold removed."""
    rows = await session.exec(
        select(KpiAlert).where(
            same_hotel(col(KpiAlert.hotel_id), snapshot.hotel_id),
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


async def post_alerts(*, url: str, snapshot: KpiSnapshot, alerts: list[KpiAlert]) -> str | None:
    """POST the alerts as JSON. None when the receiver took them (2xx); else what
    went wrong, logged here."""
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
        logger.error(detail, extra={"alerts": len(alerts), "hotel_id": snapshot.hotel_id})
        return detail
    return None


async def list_alerts(
    *, session: AsyncSession, hotel_id: str | None = None, since: datetime | None = None, limit: int = 100
) -> list[KpiAlertOut]:
    """Alerts of one hotel (or of all hotels together), newest window first."""
    query = select(KpiAlert).where(same_hotel(col(KpiAlert.hotel_id), hotel_id))
    if since is not None:
        query = query.where(col(KpiAlert.window_end) > since)
    rows = await session.exec(query.order_by(col(KpiAlert.window_end).desc(), col(KpiAlert.kpi)).limit(limit))
    return [KpiAlertOut.of(alert) for alert in rows.all()]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
