"""Response time, one meaning everywhere: from a guest's message to the first
staff reply in that conversation.

A conversation is one reservation on one channel. A staff reply is an outbound
message staff sent (a `manual:` step: the panel, the inbox, `POST
/communications/send`); the journey's own scheduled messages answer nobody.
A staff reply answers the guest's messages that no earlier staff reply in the
conversation followed; its response time runs from the first of them to the
reply. A staff reply that follows no guest message (staff writing first) has
no response time.

The inbox's timer (how long a conversation has waited), the panel's and the
inbox's threads (each reply's minutes), the delivery summary's
`avg_response_time_minutes` and so the KPI snapshots, the dashboard and the
`guest_journey_kpi_response_time_seconds` gauges all read this module.
Everything is computed by the database, on the reservation's timeline index.
How long a guest takes to answer one of our messages is another figure: the
guest's reply time ("tempo de resposta do hóspede").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, extract, func, or_
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.message_store import MessageRecord
from guest_journey.messages import MessageDirection

STAFF_STEP = "manual:%"
MINUTES_DIGITS = 2


@dataclass(frozen=True)
class ResponseTime:
    """The staff replies of a period that answered a guest, and their total minutes."""

    replies: int = 0
    total_minutes: float = 0.0

    @property
    def average_minutes(self) -> float | None:
        return round(self.total_minutes / self.replies, MINUTES_DIGITS) if self.replies else None

    def __add__(self, other: ResponseTime) -> ResponseTime:
        return ResponseTime(self.replies + other.replies, round(self.total_minutes + other.total_minutes, 3))


def is_staff_reply(message: Any) -> ColumnElement[bool]:
    """An outbound message staff sent (a `manual:` step of its journey)."""
    return and_(col(message.direction) == MessageDirection.outbound.value, col(message.step_key).like(STAFF_STEP))


def in_conversation(message: Any) -> ColumnElement[bool]:
    """A guest's message or a staff reply: what a conversation's exchange is made of."""
    return and_(col(message.reservation_id).is_not(None),
                or_(col(message.direction) == MessageDirection.inbound.value, is_staff_reply(message)))


def waiting_since(reservation_id: Any, channel: Any, *, before: Any = None) -> Any:
    """The first guest message of the conversation that no staff reply followed (the
    replies considered: those created before `before`, when given); a scalar subquery,
    NULL when every guest message was answered."""
    guest = aliased(MessageRecord, name="guest")
    staff = aliased(MessageRecord, name="staff")
    answered = [
        col(staff.reservation_id) == col(guest.reservation_id),
        col(staff.channel) == col(guest.channel),
        is_staff_reply(staff),
        col(staff.created_at) >= col(guest.created_at),
    ]
    limits = []
    if before is not None:
        answered.append(col(staff.created_at) < before)
        limits.append(col(guest.created_at) <= before)
    return (
        select(func.min(guest.created_at))
        .where(
            col(guest.reservation_id) == reservation_id,
            col(guest.channel) == channel,
            col(guest.direction) == MessageDirection.inbound.value,
            *limits,
            ~exists().where(*answered).correlate_except(staff),
        )
        .scalar_subquery()
    )


async def response_time_by_hotel(
    *,
    session: AsyncSession,
    since: datetime | None = None,
    until: datetime | None = None,
    hotels: Collection[str] | None = None,
) -> dict[str | None, ResponseTime]:
    """Staff replies created in `[since, until)` that answered a guest, by hotel (of
    `hotels` only, when given)."""
    reply = aliased(MessageRecord, name="reply")
    minutes = _minutes_between(session, waiting_since(col(reply.reservation_id), col(reply.channel),
                                                      before=col(reply.created_at)), col(reply.created_at))
    conditions = [is_staff_reply(reply), col(reply.reservation_id).is_not(None)]
    if since is not None:
        conditions.append(col(reply.created_at) >= since)
    if until is not None:
        conditions.append(col(reply.created_at) < until)
    if hotels is not None:
        conditions.append(col(reply.hotel_id).in_(sorted(hotels)))
    query = select(reply.hotel_id, func.count(minutes), func.sum(minutes)).where(*conditions).group_by(reply.hotel_id)
    return {
        hotel: ResponseTime(int(count), round(float(total or 0.0), 3))  # julianday is exact to ms
        for hotel, count, total in (await session.exec(query)).all()
        if count
    }


async def response_time(
    *,
    session: AsyncSession,
    since: datetime | None = None,
    until: datetime | None = None,
    hotels: Collection[str] | None = None,
) -> ResponseTime:
    """`response_time_by_hotel`, of every hotel asked for together."""
    total = ResponseTime()
    for figure in (await response_time_by_hotel(session=session, since=since, until=until, hotels=hotels)).values():
        total += figure
    return total


async def reply_minutes(*, session: AsyncSession, reservation_id: str) -> dict[str, float]:
    """The response time of each staff reply of a reservation that answered a guest, by message id."""
    reply = aliased(MessageRecord, name="reply")
    minutes = _minutes_between(session, waiting_since(col(reply.reservation_id), col(reply.channel),
                                                      before=col(reply.created_at)), col(reply.created_at))
    rows = await session.exec(
        select(reply.id, minutes).where(col(reply.reservation_id) == reservation_id, is_staff_reply(reply))
    )
    return {message_id: round(float(value), 1) for message_id, value in rows.all() if value is not None}


def _minutes_between(session: AsyncSession, start: Any, end: Any) -> ColumnElement[Any]:
    """`end - start` in minutes, in the database's own date arithmetic."""
    bind = session.bind
    dialect = bind.dialect.name if bind is not None else "sqlite"
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 1440.0
    return extract("epoch", end - start) / 60.0
