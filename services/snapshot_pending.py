"""The `snapshot_pending` table: async snapshots sent to journeys and not yet applied.

A snapshot sent as the `apply_snapshot_async` signal is remembered here with the
journey's read-model revision seen when it was sent. It is pending until the
journey's read model is written again (its revision passes the one seen: the
workflow records after applying a signal) or the journey has finished. The
revision is the read model's, so a write already under way when the signal
arrived may settle it one write early.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Column, delete, exists, func, or_
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.database import UTCDateTime, utcnow
from guest_journey.journeys import FINAL_STAGES
from guest_journey.read_model import JourneyRecord

_FINAL = [stage.value for stage in FINAL_STAGES]


class SnapshotPending(SQLModel, table=True):
    """An async snapshot sent to a journey whose read model has not moved since."""

    __tablename__ = "snapshot_pending"

    reservation_id: str = SQLField(primary_key=True, max_length=128)
    request_id: str = SQLField(primary_key=True, max_length=64)
    seen_revision: int = -1
    sent_at: datetime = SQLField(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def settled() -> Any:
    """An async snapshot whose journey has recorded since it was sent, or has finished."""
    return exists().where(
        col(JourneyRecord.reservation_id) == col(SnapshotPending.reservation_id),
        or_(col(JourneyRecord.revision) > col(SnapshotPending.seen_revision), col(JourneyRecord.stage).in_(_FINAL)),
    )


async def forget_settled(session: AsyncSession) -> None:
    """Delete the settled ones, and commit."""
    await session.exec(delete(SnapshotPending).where(settled()))
    await session.commit()


async def pending_snapshots(*, session: AsyncSession, hotels: Collection[str] | None = None) -> int:
    """Async snapshots sent and not yet applied by their journeys (a read: settled
    ones are deleted when snapshots are next sent); of these hotels' journeys only,
    when given."""
    query = select(func.count()).select_from(SnapshotPending).where(~settled())
    if hotels is not None:
        query = query.where(col(SnapshotPending.reservation_id).in_(
            select(JourneyRecord.reservation_id).where(col(JourneyRecord.hotel_id).in_(sorted(hotels)))
        ))
    count = await session.exec(query)
    return int(count.one())
