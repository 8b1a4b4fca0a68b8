"""Requests made with an `Idempotency-Key`: the first answer, kept to be replayed.

A key is claimed before its request runs: a row with the request's
`fingerprint` (a hash of method, path and body) and a lease. While the request
runs its lease is renewed (`renew`); its answer, once it has one, is kept
(`record_answer`) and replayed to every repeat of the request. A claim whose
lease ran out without an answer (its process stopped) is taken over by the next
repeat. A request that failed gives its key up (`release`), so a repeat runs again.

Keys are scoped by their caller and route (`scope`), and kept `KEEP_FOR` (24 h)
after their first use: the next claim deletes older rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Index, Text, delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Field, SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.database import UTCDateTime, utcnow

KEEP_FOR = timedelta(hours=24)
LEASE = timedelta(seconds=15)
SCOPE_LENGTH = 200
KEY_LENGTH = 255


class IdempotentRequest(SQLModel, table=True):
    __tablename__ = "idempotent_request"
    __table_args__ = (Index("ix_idempotent_request_created_at", "created_at"),)

    scope: str = Field(primary_key=True, max_length=SCOPE_LENGTH)
    key: str = Field(primary_key=True, max_length=KEY_LENGTH)
    fingerprint: str = Field(max_length=64)
    status_code: int | None = None
    response_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


@dataclass(frozen=True)
class Claimed:
    """This request holds the key: run it, then `record_answer` (or `release`)."""


@dataclass(frozen=True)
class Answered:
    """The first request with the key answered this."""

    status_code: int
    body: str


@dataclass(frozen=True)
class InFlight:
    """The first request with the key is still running; its lease ends at `lease_until`."""

    lease_until: datetime


@dataclass(frozen=True)
class Mismatch:
    """The key was used, within `KEEP_FOR`, for a different request."""


Claim = Claimed | Answered | InFlight | Mismatch


def _this(scope: str, key: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return col(IdempotentRequest.scope) == scope, col(IdempotentRequest.key) == key


async def claim(
    *, session: AsyncSession, scope: str, key: str, fingerprint: str, now: datetime | None = None
) -> Claim:
    """Claim the key for this request, or say what the first request with it did."""
    now = now or utcnow()
    await session.exec(delete(IdempotentRequest).where(col(IdempotentRequest.created_at) <= now - KEEP_FOR))
    try:
        await session.exec(
            insert(IdempotentRequest).values(scope=scope, key=key, fingerprint=fingerprint, created_at=now,
                                             lease_until=now + LEASE)
        )
        await session.commit()
        return Claimed()
    except IntegrityError:
        await session.rollback()
    first = await session.get(IdempotentRequest, (scope, key), populate_existing=True)
    if first is None:  # given up or expired since the insert: try again
        return await claim(session=session, scope=scope, key=key, fingerprint=fingerprint, now=now)
    if first.fingerprint != fingerprint:
        return Mismatch()
    if first.status_code is not None and first.response_body is not None:
        return Answered(first.status_code, first.response_body)
    assert first.lease_until is not None
    if first.lease_until > now:
        return InFlight(first.lease_until)
    # The first request's lease ran out without an answer (its process stopped):
    # take the key over, unless another repeat did so first.
    taken = await session.exec(
        update(IdempotentRequest)
        .where(*_this(scope, key), col(IdempotentRequest.status_code).is_(None),
               col(IdempotentRequest.lease_until) == first.lease_until)
        .values(lease_until=now + LEASE)
    )
    await session.commit()
    return Claimed() if taken.rowcount == 1 else InFlight(now + LEASE)


async def renew(*, session: AsyncSession, scope: str, key: str, now: datetime | None = None) -> None:
    """Extend the lease of a request still running."""
    await session.exec(
        update(IdempotentRequest)
        .where(*_this(scope, key), col(IdempotentRequest.status_code).is_(None))
        .values(lease_until=(now or utcnow()) + LEASE)
    )
    await session.commit()


async def record_answer(*, session: AsyncSession, scope: str, key: str, status_code: int, body: str) -> None:
    """Keep the answer of the request that claimed the key, to replay it."""
    await session.exec(
        update(IdempotentRequest)
        .where(*_this(scope, key))
        .values(status_code=status_code, response_body=body, lease_until=None)
    )
    await session.commit()


async def release(*, session: AsyncSession, scope: str, key: str) -> None:
    """Give the key up (the request failed, no answer is kept): a repeat runs again."""
    await session.exec(
        delete(IdempotentRequest).where(*_this(scope, key), col(IdempotentRequest.status_code).is_(None))
    )
    await session.commit()
