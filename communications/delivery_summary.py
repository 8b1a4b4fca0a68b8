"""How well messages reach guests, and how fast each side answers
(`GET /communications/delivery/summary`, CONTRACT §2).

Delivery figures count outbound messages created in `[since, until)`, of one
hotel or of all:

- `total`: every outbound message;
- `sent`: those handed over to their channel, i.e. whose status is `sent`,
  `delivered` or `read`;
- `delivered`: those that reached the guest, `delivered` or `read`;
- `failed`: those whose status is `failed`;
- `in_doubt`: those whose channel may or may not have them (status
  `in_doubt`: the provider's answer was lost), neither sent nor failed until
  staff send them again;
- `failure_rate`: `failed / total`, 0.0 when there are none.

A message still `queued` or `sending` counts in `total` only.
`by_channel` has the same `total`, `failed`, `in_doubt` and `failure_rate`
for every channel that has messages in the period.

Response time (`avg_response_time_minutes`, and the same figure in
`response_time_minutes.hotel_replies`): from a guest's message to the first
staff reply in that conversation, averaged over the staff replies created in
the period (`communications.response_times`, the one meaning the inbox, the
panel, the dashboard and the metrics use). `guest_replies` is the guest's
reply time ("tempo de resposta do hóspede"): for every guest message that
carries `in_reply_to` one of ours, created in the period, `reply.created_at -
replied_to.created_at` in minutes. Each is null when there are none.

Everything is aggregated by the database (two queries, grouped by channel and
by reply direction); nothing is loaded message by message.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import case, extract, func
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from communications.message_store import MessageRecord
from communications.response_times import response_time
from guest_journey.messages import SENT_STATUSES, MessageDirection, MessageStatus

DELIVERED_STATUSES = frozenset({MessageStatus.delivered, MessageStatus.read})
RATE_DIGITS = 4
MINUTES_DIGITS = 2


class ChannelSummary(BaseModel):
    total: int = 0
    failed: int = 0
    in_doubt: int = 0
    failure_rate: float = 0.0


class ResponseTimes(BaseModel):
    """Average minutes to a reply, by who replied (module rules)."""

    hotel_replies: float | None = Field(default=None, description="the response time: staff replies to guests")
    guest_replies: float | None = Field(
        default=None, description="the guest's reply time (tempo de resposta do hóspede) to our messages")


class DeliverySummary(BaseModel):
    total: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    in_doubt: int = 0
    failure_rate: float = 0.0
    avg_response_time_minutes: float | None = None
    response_time_minutes: ResponseTimes = Field(default_factory=ResponseTimes)
    by_channel: dict[str, ChannelSummary] = Field(default_factory=dict)


async def delivery_summary(
    *,
    session: AsyncSession,
    since: datetime | None = None,
    until: datetime | None = None,
    hotel_id: str | None = None,
    hotels: Collection[str] | None = None,
) -> DeliverySummary:
    """Delivery and response-time figures of a period (module rules): of one hotel
    (`hotel_id`), of some (`hotels`, a caller's scope: `api.access`), or of all."""
    scope = _scope(hotel_id, hotels)
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise ValueError(f"{name} must carry its offset")
    summary = DeliverySummary()
    for channel, total, sent, delivered, failed, in_doubt in await _delivery_counts(
        session, since, until, scope
    ):
        summary.total += total
        summary.sent += int(sent)
        summary.delivered += int(delivered)
        summary.failed += int(failed)
        summary.in_doubt += int(in_doubt)
        summary.by_channel[channel] = ChannelSummary(
            total=total, failed=int(failed), in_doubt=int(in_doubt), failure_rate=_rate(failed, total)
        )
    summary.failure_rate = _rate(summary.failed, summary.total)

    staff = await response_time(session=session, since=since, until=until, hotels=scope)
    summary.avg_response_time_minutes = staff.average_minutes
    summary.response_time_minutes.hotel_replies = staff.average_minutes
    for reply_direction, replied_direction, count, minutes in await _response_times(
        session, since, until, scope
    ):
        if (
            reply_direction == MessageDirection.inbound
            and replied_direction == MessageDirection.outbound
        ):
            summary.response_time_minutes.guest_replies = round(float(minutes) / count, MINUTES_DIGITS)
    return summary


async def _delivery_counts(
    session: AsyncSession, since: datetime | None, until: datetime | None, scope: frozenset[str] | None
) -> Sequence[tuple[str, int, int, int, int, int]]:
    status = col(MessageRecord.status)
    channel = col(MessageRecord.channel)
    query = (
        Select[str, int, int, int, int, int](
            channel,
            func.count(),
            func.sum(_one_if(status.in_([value.value for value in SENT_STATUSES]))),
            func.sum(_one_if(status.in_([value.value for value in DELIVERED_STATUSES]))),
            func.sum(_one_if(status == MessageStatus.failed.value)),
            func.sum(_one_if(status == MessageStatus.in_doubt.value)),
        )
        .where(
            col(MessageRecord.direction) == MessageDirection.outbound.value,
            *_within(MessageRecord, since, until, scope),
        )
        .group_by(channel)
        .order_by(channel)
    )
    return (await session.exec(query)).all()


async def _response_times(
    session: AsyncSession, since: datetime | None, until: datetime | None, scope: frozenset[str] | None
) -> Sequence[tuple[str, str, int, Any]]:
    reply = aliased(MessageRecord, name="reply")
    replied_to = aliased(MessageRecord, name="replied_to")
    minutes = _minutes_between(session, col(replied_to.created_at), col(reply.created_at))
    directions = (col(reply.direction), col(replied_to.direction))
    query = (
        select(*directions, func.count(), func.sum(minutes))
        .join(replied_to, col(reply.in_reply_to) == col(replied_to.id))
        .where(col(reply.in_reply_to).is_not(None), *_within(reply, since, until, scope))
        .group_by(*directions)
    )
    return (await session.exec(query)).all()


def _scope(hotel_id: str | None, hotels: Collection[str] | None) -> frozenset[str] | None:
    """The hotels counted: both filters apply when both are given; None is every hotel."""
    scope = None if hotels is None else frozenset(hotels)
    if hotel_id is not None:
        scope = frozenset({hotel_id}) & scope if scope is not None else frozenset({hotel_id})
    return scope


def _within(
    message: Any, since: datetime | None, until: datetime | None, scope: frozenset[str] | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(col(message.created_at) >= since)
    if until is not None:
        conditions.append(col(message.created_at) < until)
    if scope is not None:
        conditions.append(col(message.hotel_id).in_(sorted(scope)))
    return conditions


def _one_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _minutes_between(session: AsyncSession, start: Any, end: Any) -> ColumnElement[Any]:
    """`end - start` in minutes, in the database's own date arithmetic."""
    bind = session.bind
    dialect = bind.dialect.name if bind is not None else "sqlite"
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 1440.0
    return extract("epoch", end - start) / 60.0


def _rate(part: int, whole: int) -> float:
    return round(part / whole, RATE_DIGITS) if whole else 0.0
