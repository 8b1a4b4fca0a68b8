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
A staff reply's response time is stamped on it when it is created
(`message.response_microseconds`, from `guest_waiting_since`: the conversation
as staff saw it then), and the database sums the stamps by UTC day and hotel
(`message_response_day`, kept by triggers: `communications.message_days`), so a
period reads its whole days from the totals and only its edges from the replies.
How long a guest takes to answer one of our messages is another figure: the
guest's reply time ("tempo de resposta do hóspede").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.message_days import (
    MICROSECONDS_PER_MINUTE,
    ResponseDayRecord,
    in_days,
    split,
    within,
)
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


def waiting_since(reservation_id: Any, channel: Any) -> Any:
    """The first guest message of the conversation that no staff reply followed; a
    scalar subquery, NULL when every guest message was answered."""
    guest = aliased(MessageRecord, name="guest")
    staff = aliased(MessageRecord, name="staff")
    answered = [
        col(staff.reservation_id) == col(guest.reservation_id),
        col(staff.channel) == col(guest.channel),
        is_staff_reply(staff),
        col(staff.created_at) >= col(guest.created_at),
    ]
    return (
        select(func.min(guest.created_at))
        .where(
            col(guest.reservation_id) == reservation_id,
            col(guest.channel) == channel,
            col(guest.direction) == MessageDirection.inbound.value,
            ~exists().where(*answered).correlate_except(staff),
        )
        .scalar_subquery()
    )


async def guest_waiting_since(*, session: AsyncSession, reservation_id: str, channel: str) -> datetime | None:
    """The first guest message of the conversation that no staff reply has followed
    yet: what a staff reply created now answers (`message_store.get_or_create_outbound`
    stamps its response time from it)."""
    return (await session.exec(select(waiting_since(reservation_id, channel)))).first()


def is_staff_step(step_key: str | None) -> bool:
    """A step that is a message staff sent (`is_staff_reply`, in Python)."""
    return step_key is not None and step_key.startswith(STAFF_STEP.rstrip("%"))


async def response_time_by_hotel(
    *,
    session: AsyncSession,
    since: datetime | None = None,
    until: datetime | None = None,
    hotels: Collection[str] | None = None,
) -> dict[str | None, ResponseTime]:
    """Staff replies created in `[since, until)` that answered a guest, by hotel (of
    `hotels` only, when given): each reply's response time was stamped when it was
    created; whole UTC days are read from their daily totals, the edges from the replies."""
    scope = None if hotels is None else frozenset(hotels)
    sums: dict[str | None, tuple[int, int]] = {}

    def add(hotel: str | None, count: int, microseconds: int) -> None:
        known = sums.get(hotel, (0, 0))
        sums[hotel] = (known[0] + count, known[1] + microseconds)

    days, edges = split(since, until)
    if days is not None:
        day_hotel = col(ResponseDayRecord.hotel_id)
        totals = select(day_hotel, func.sum(col(ResponseDayRecord.replies)),
                        func.sum(col(ResponseDayRecord.response_microseconds))
                        ).where(*in_days(ResponseDayRecord, *days, scope)).group_by(day_hotel)
        for day_hotel_id, day_count, day_microseconds in (await session.exec(totals)).all():
            add(day_hotel_id or None, int(day_count), int(day_microseconds))  # '' is no hotel in the totals
    for start, end in edges:
        for edge in await _stamped(session, start, end, scope):
            add(*edge)
    return {
        hotel: ResponseTime(count, round(microseconds / MICROSECONDS_PER_MINUTE, 3))
        for hotel, (count, microseconds) in sums.items()
        if count
    }


async def _stamped(
    session: AsyncSession, since: datetime | None, until: datetime | None, scope: frozenset[str] | None
) -> list[tuple[str | None, int, int]]:
    """(hotel, replies, microseconds) of the stamped staff replies of a period."""
    stamped = col(MessageRecord.response_microseconds)
    query = select(MessageRecord.hotel_id, func.count(stamped), func.sum(stamped)).where(
        stamped.is_not(None), *within(MessageRecord, since, until, scope)
    ).group_by(col(MessageRecord.hotel_id))
    return [(hotel, int(count), int(total or 0)) for hotel, count, total in (await session.exec(query)).all()]


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
    stamped = col(MessageRecord.response_microseconds)
    rows = await session.exec(
        select(MessageRecord.id, stamped).where(col(MessageRecord.reservation_id) == reservation_id,
                                                 stamped.is_not(None))
    )
    return {
        message_id: round(value / MICROSECONDS_PER_MINUTE, 1) for message_id, value in rows.all() if value is not None
    }
