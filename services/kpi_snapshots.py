"""Stored KPI snapshots: a measured window written (replacing the window's
earlier snapshot), and read back for the dashboard's trend and the gauges.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.database import utcnow
from services.kpi_tables import KpiSnapshot, WindowKind, same_hotel


async def store_snapshot(*, session: AsyncSession, snapshot: KpiSnapshot) -> KpiSnapshot:
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


async def _existing_snapshot(session: AsyncSession, snapshot: KpiSnapshot) -> KpiSnapshot | None:
    rows = await session.exec(
        select(KpiSnapshot).where(
            same_hotel(col(KpiSnapshot.hotel_id), snapshot.hotel_id),
            KpiSnapshot.window_kind == snapshot.window_kind,
            KpiSnapshot.window_start == snapshot.window_start,
        )
    )
    return rows.first()


async def list_snapshots(
    *, session: AsyncSession, window_kind: WindowKind, hotel_id: str | None = None, limit: int = 30
) -> list[KpiSnapshot]:
    """The latest snapshots of one kind, newest first (the dashboard's trend)."""
    rows = await session.exec(
        select(KpiSnapshot)
        .where(same_hotel(col(KpiSnapshot.hotel_id), hotel_id), KpiSnapshot.window_kind == window_kind.value)
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
