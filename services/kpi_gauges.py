"""The Prometheus KPI gauges, set from stored snapshots.

They are not set when a window is measured (a dashboard view measures windows
too): `publish_kpi_gauges` sets them from the stored snapshots of the last
closed windows, at each scrape of a process's metrics.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.telemetry import kpis_measured
from services.kpi_snapshots import latest_closed_snapshots


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
