"""Guest-experience KPIs per window, stored for the dashboard, with their alerts
(runbook: "KPIs e Alertas", `record_dashboard_guest_experience`).

`record_dashboard_guest_experience` measures one window of one day or one week,
for one hotel or for all, and keeps what came of it; `telemetry_status` says how
its last run in this process went (`services.automation.telemetry_check`).
Recomputing a window replaces its snapshot and re-evaluates its alerts. The
work is done beside this module:

- `services.kpi_tables`: the snapshot and alert tables, the kinds of window and alert;
- `services.kpi_measure`: a window's figures, from aggregate queries;
- `services.kpi_snapshots`: snapshots stored and read back;
- `services.kpi_alerts`: threshold and trend alerts, stored, logged, posted to the webhook, listed;
- `services.kpi_gauges`: the Prometheus KPI gauges, set from the stored snapshots at each scrape.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.database import utcnow
from guest_journey.policy import KpiTargets
from services.kpi_alerts import evaluate_alerts, post_alerts, store_alerts
from services.kpi_measure import measure_window
from services.kpi_snapshots import store_snapshot
from services.kpi_tables import KpiSnapshot, window_kind_of

logger = logging.getLogger(__name__)


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
        measured = await measure_window(session=session, kind=kind, window_start=window_start,
                                        window_end=window_end, hotel_id=hotel_id, now=now or utcnow())
        snapshot = await store_snapshot(session=session, snapshot=measured)
        findings = await evaluate_alerts(session=session, snapshot=snapshot, targets=targets or KpiTargets())
        alerts = await store_alerts(session=session, snapshot=snapshot, findings=findings)
    except Exception as error:
        telemetry_status.failed(f"KPI computation failed: {type(error).__name__}")
        logger.exception("guest experience KPIs not recorded",
                         extra={"hotel_id": hotel_id, "window_start": window_start.isoformat()})
        raise
    undelivered = [alert for alert in alerts if alert.notified_at is None]
    if webhook_url and undelivered:
        failure = await post_alerts(url=webhook_url, snapshot=snapshot, alerts=undelivered)
        if failure is not None:
            telemetry_status.failed(failure)
            return snapshot
        for alert in undelivered:
            alert.notified_at = utcnow()
            session.add(alert)
        await session.commit()
    telemetry_status.succeeded()
    return snapshot
