"""Addresses that asked for no more offers (RFC 8058 one-click, or the page).

An unsubscribed address still gets transactional messages (check-in, feedback,
staff replies); marketing messages (offers and their follow-ups) are skipped.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.message_store import normalise_address
from guest_journey.database import UTCDateTime, utcnow


class Unsubscribe(SQLModel, table=True):
    __tablename__ = "unsubscribe"

    address: str = Field(primary_key=True, max_length=320)
    reservation_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


async def unsubscribe(*, session: AsyncSession, address: str, reservation_id: str | None) -> None:
    """Record the address (once; a second request changes nothing)."""
    key = normalise_address(address)
    if key is None or await session.get(Unsubscribe, key) is not None:
        return
    session.add(Unsubscribe(address=key, reservation_id=reservation_id))
    await session.commit()


async def is_unsubscribed(*, session: AsyncSession, address: str) -> bool:
    key = normalise_address(address)
    return key is not None and await session.get(Unsubscribe, key) is not None
