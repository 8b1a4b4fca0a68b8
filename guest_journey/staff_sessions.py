"""Signed-out staff sessions: a session cookie whose id is here no longer signs anyone in.

A staff session cookie (`api.staff.session`) is signed and carries its own
expiry, so without a record on the server a copy of it (from a shared
computer, a proxy log, a stolen laptop) would work until it expires even after
its owner signed out. Signing out writes the session's id here with the
cookie's expiry; a row is needed only until then, and expired rows are
dropped whenever a session is signed out.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.database import UTCDateTime, utcnow


class RevokedStaffSession(SQLModel, table=True):
    __tablename__ = "revoked_staff_session"

    session_id: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


async def revoke_staff_session(*, session: AsyncSession, session_id: str, expires_at: datetime) -> None:
    """Record the session as signed out (idempotent), and forget sessions that have expired anyway."""
    await session.exec(delete(RevokedStaffSession).where(col(RevokedStaffSession.expires_at) <= utcnow()))
    if await session.get(RevokedStaffSession, session_id) is None:
        session.add(RevokedStaffSession(session_id=session_id, expires_at=expires_at))
    try:
        await session.commit()
    except IntegrityError:  # the same session signed out twice at once: revoked either way
        await session.rollback()


async def staff_session_revoked(*, session: AsyncSession, session_id: str) -> bool:
    found = await session.exec(
        select(RevokedStaffSession.session_id).where(RevokedStaffSession.session_id == session_id).limit(1)
    )
    return found.first() is not None
