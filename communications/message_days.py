"""Daily totals of the message table, which the delivery summary reads instead of
every message (`communications.delivery_summary`).

Three tables, one row per UTC day and hotel (`''` for messages of no hotel):

- `message_day`: outbound messages by channel and current status;
- `message_reply_day`: messages that reply to another (`in_reply_to`), by the
  reply's direction and the direction of the message replied to, with the sum
  of the time between the two in microseconds;
- `message_response_day`: staff replies that answered a guest, with the sum of
  their response times (`communications.response_times`, migration 0013).

The database keeps them, not the code: triggers on `message` (migrations 0010 and 0013)
add and subtract in the same statement that inserts, updates or deletes a
message, whichever code or tool writes it, so the totals are exact at every
commit. The one assumption: the message replied to keeps its direction and its
`created_at` (nothing changes them once written).

A period is read as its whole UTC days from these tables plus its partial days at
either edge counted from the messages themselves (`Figures.read`): a KPI window in
a hotel's local days reads its whole days from the totals and at most two partial
days from the messages. Days are UTC so that any period of any hotel, whatever
its time zone (and if its policy's time zone changes), splits the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, Column, Date, Integer, cast, extract, func
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.message_store import MessageRecord
from guest_journey.messages import MessageDirection

NO_HOTEL = ""  # the hotel of a message that has none, in the totals' keys
MICROSECONDS_PER_MINUTE = 60_000_000


class MessageDayRecord(SQLModel, table=True):
    __tablename__ = "message_day"

    day: date = Field(sa_column=Column(Date(), primary_key=True))
    hotel_id: str = Field(primary_key=True, max_length=64)
    channel: str = Field(primary_key=True, max_length=16)
    status: str = Field(primary_key=True, max_length=16)
    messages: int = Field(default=0, sa_column=Column(Integer(), nullable=False))


class ResponseDayRecord(SQLModel, table=True):
    """Staff replies that answered a guest, by the reply's UTC day and hotel, with the
    sum of their response times (`message.response_microseconds`, migration 0013)."""

    __tablename__ = "message_response_day"

    day: date = Field(sa_column=Column(Date(), primary_key=True))
    hotel_id: str = Field(primary_key=True, max_length=64)
    replies: int = Field(default=0, sa_column=Column(Integer(), nullable=False))
    response_microseconds: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))


class ReplyDayRecord(SQLModel, table=True):
    __tablename__ = "message_reply_day"

    day: date = Field(sa_column=Column(Date(), primary_key=True))
    hotel_id: str = Field(primary_key=True, max_length=64)
    direction: str = Field(primary_key=True, max_length=16)
    replied_direction: str = Field(primary_key=True, max_length=16)
    replies: int = Field(default=0, sa_column=Column(Integer(), nullable=False))
    reply_microseconds: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False))


@dataclass
class Figures:
    """Outbound messages by (channel, status), and replies by (reply direction,
    replied direction) as (count, microseconds), of a period and hotels."""

    messages: Counter[tuple[str, str]] = field(default_factory=Counter)
    replies: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)

    @classmethod
    async def read(
        cls, session: AsyncSession, since: datetime | None, until: datetime | None, scope: frozenset[str] | None
    ) -> Figures:
        """The period's figures: whole UTC days from the totals, partial days from the messages."""
        figures = cls()
        days, edges = split(since, until)
        if days is not None:
            await figures._add_days(session, *days, scope)
        for start, end in edges:
            await figures._add_scanned(session, start, end, scope)
        return figures

    @classmethod
    async def scanned(
        cls, session: AsyncSession, since: datetime | None, until: datetime | None, scope: frozenset[str] | None
    ) -> Figures:
        """The same figures counted from every message of the period (no totals)."""
        figures = cls()
        await figures._add_scanned(session, since, until, scope)
        return figures

    def _add_reply(self, key: tuple[str, str], count: int, microseconds: int) -> None:
        known_count, known_microseconds = self.replies.get(key, (0, 0))
        self.replies[key] = (known_count + count, known_microseconds + microseconds)

    async def _add_days(
        self, session: AsyncSession, first: date | None, end: date | None, scope: frozenset[str] | None
    ) -> None:
        channel, status = col(MessageDayRecord.channel), col(MessageDayRecord.status)
        query = select(channel, status, func.sum(col(MessageDayRecord.messages))).where(
            *in_days(MessageDayRecord, first, end, scope)
        ).group_by(channel, status)
        for channel_value, status_value, count in (await session.exec(query)).all():
            self.messages[(channel_value, status_value)] += int(count)
        directions = (col(ReplyDayRecord.direction), col(ReplyDayRecord.replied_direction))
        replies = select(
            *directions, func.sum(col(ReplyDayRecord.replies)), func.sum(col(ReplyDayRecord.reply_microseconds))
        ).where(*in_days(ReplyDayRecord, first, end, scope)).group_by(*directions)
        for direction, replied_direction, count, microseconds in (await session.exec(replies)).all():
            self._add_reply((direction, replied_direction), int(count), int(microseconds))

    async def _add_scanned(
        self, session: AsyncSession, since: datetime | None, until: datetime | None, scope: frozenset[str] | None
    ) -> None:
        channel, status = col(MessageRecord.channel), col(MessageRecord.status)
        query = select(channel, status, func.count()).where(
            col(MessageRecord.direction) == MessageDirection.outbound.value,
            *within(MessageRecord, since, until, scope),
        ).group_by(channel, status)
        for channel_value, status_value, count in (await session.exec(query)).all():
            self.messages[(channel_value, status_value)] += int(count)
        reply = aliased(MessageRecord, name="reply")
        replied_to = aliased(MessageRecord, name="replied_to")
        microseconds = _microseconds_between(session, col(replied_to.created_at), col(reply.created_at))
        directions = (col(reply.direction), col(replied_to.direction))
        replies = (
            select(*directions, func.count(), func.sum(microseconds))
            .join(replied_to, col(reply.in_reply_to) == col(replied_to.id))
            .where(col(reply.in_reply_to).is_not(None), *within(reply, since, until, scope))
            .group_by(*directions)
        )
        for direction, replied_direction, count, total in (await session.exec(replies)).all():
            self._add_reply((direction, replied_direction), int(count), int(total))


def split(
    since: datetime | None, until: datetime | None
) -> tuple[tuple[date | None, date | None] | None, list[tuple[datetime | None, datetime | None]]]:
    """A period as its whole UTC days `[first, end)` (None: unbounded on that side; no
    days when it holds none) and the partial periods left at its edges."""
    first = None if since is None else _day_on_or_after(since)
    end = None if until is None else until.astimezone(UTC).date()
    if first is not None and end is not None and first >= end:
        return None, [(since, until)]
    edges: list[tuple[datetime | None, datetime | None]] = []
    if since is not None and first is not None and _midnight(first) > since:
        edges.append((since, _midnight(first)))
    if until is not None and end is not None and _midnight(end) < until:
        edges.append((_midnight(end), until))
    return (first, end), edges


def _day_on_or_after(moment: datetime) -> date:
    day = moment.astimezone(UTC).date()
    return day if _midnight(day) == moment else day + timedelta(days=1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def in_days(
    table: Any, first: date | None, end: date | None, scope: Collection[str] | None
) -> list[ColumnElement[bool]]:
    return _between(col(table.day), first, end, col(table.hotel_id), scope)


def within(
    message: Any, since: datetime | None, until: datetime | None, scope: Collection[str] | None
) -> list[ColumnElement[bool]]:
    return _between(col(message.created_at), since, until, col(message.hotel_id), scope)


def _between(
    column: Any, low: Any, high: Any, hotel: Any, scope: Collection[str] | None
) -> list[ColumnElement[bool]]:
    """`low <= column < high` (each bound when given), of the hotels in `scope` (when given)."""
    conditions: list[ColumnElement[bool]] = []
    if low is not None:
        conditions.append(column >= low)
    if high is not None:
        conditions.append(column < high)
    if scope is not None:
        conditions.append(hotel.in_(sorted(scope)))
    return conditions


def _microseconds_between(session: AsyncSession, start: Any, end: Any) -> ColumnElement[Any]:
    """`end - start` in whole microseconds, exactly as the triggers compute it."""
    bind = session.bind
    dialect = bind.dialect.name if bind is not None else "sqlite"
    if dialect == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff'
        return _sqlite_microseconds(end) - _sqlite_microseconds(start)
    return cast(extract("epoch", end - start) * 1_000_000, BigInteger)


def _sqlite_microseconds(moment: Any) -> ColumnElement[Any]:
    return cast(func.strftime("%s", moment), Integer) * 1_000_000 + cast(func.substr(moment, 21, 6), Integer)
