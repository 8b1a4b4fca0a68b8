"""The audit trail of personal-data requests: who exported or erased which
reservation's data, when, and how many rows were touched (never the data itself)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.database import UTCDateTime, utcnow

GdprAction = Literal["export", "erase"]


class GdprAudit(SQLModel, table=True):
    __tablename__ = "gdpr_audit"

    id: int | None = Field(default=None, primary_key=True)
    reservation_id: str = Field(index=True, max_length=128)
    action: str = Field(max_length=16)
    actor: str = Field(max_length=128)
    reason: str | None = Field(default=None, max_length=1000)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))


def audit_record(
    *, reservation_id: str, action: GdprAction, actor: str, reason: str | None, counts: dict[str, int]
) -> GdprAudit:
    """An audit row for the request; `counts` is rows touched per table. The caller adds and commits it."""
    if action not in ("export", "erase"):
        raise ValueError(f"unknown personal-data action {action!r}: expected 'export' or 'erase'")
    return GdprAudit(
        reservation_id=reservation_id,
        action=action,
        actor=actor,
        reason=reason,
        details=json.dumps(counts, sort_keys=True),
    )


async def audit_trail(*, session: AsyncSession, reservation_id: str) -> list[GdprAudit]:
    """The audit rows of a reservation, oldest first."""
    rows = await session.exec(
        select(GdprAudit).where(GdprAudit.reservation_id == reservation_id).order_by(col(GdprAudit.id))
    )
    return list(rows.all())
