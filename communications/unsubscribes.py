"""Addresses that asked for no more offers (RFC 8058 one-click, or the page).

An unsubscribed address still gets transactional messages (check-in, feedback,
staff replies); marketing messages (offers and their follow-ups) are skipped.

When a guest's data is erased, the row keeps a keyed one-way digest of the
address (`address_digest`) instead of the address, so the opt-out survives: the
same address booking again is still unsubscribed, and the table no longer says
who it was.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.message_store import normalise_address
from guest_journey import signing
from guest_journey.database import UTCDateTime, utcnow

DIGEST_PREFIX = "sha256:"


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


async def is_unsubscribed(*, session: AsyncSession, address: str, secret_key: signing.Secrets) -> bool:
    """Whether the address, or the digest an erasure left of it, asked for no more offers.
    `secret_key` may be the keys to try (current first, then `GUEST_JOURNEY_SECRET_KEY_FALLBACKS`):
    a digest left before the key was rotated still counts."""
    key = normalise_address(address)
    if key is None:
        return False
    keys = [key, *(address_digest(key, secret) for secret in signing.keys(secret_key))]
    found = await session.exec(select(Unsubscribe.address).where(col(Unsubscribe.address).in_(keys)).limit(1))
    return found.first() is not None


def address_digest(address: str, secret_key: str) -> str:
    """`sha256:` and the HMAC-SHA256 of the normalised address under the service's secret key
    (`signing.Purpose.UNSUBSCRIBE_DIGEST`)."""
    key = normalise_address(address) or address
    return DIGEST_PREFIX + signing.sign(signing.Purpose.UNSUBSCRIBE_DIGEST, secret_key, key)
