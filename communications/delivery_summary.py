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

Everything is aggregated by the database and nothing is loaded message by
message: a period's whole UTC days come from the daily totals the database
keeps beside the messages (`communications.message_days`), its partial days at
either edge from the messages themselves, so that all time costs about what a
day costs. Response times are summed in whole microseconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import datetime

from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.message_days import MICROSECONDS_PER_MINUTE, Figures
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
    summary = summary_of(await Figures.read(session, since, until, scope))
    staff = await response_time(session=session, since=since, until=until, hotels=scope)
    summary.avg_response_time_minutes = staff.average_minutes
    summary.response_time_minutes.hotel_replies = staff.average_minutes
    return summary


def summary_of(figures: Figures) -> DeliverySummary:
    """The summary's counts and the guest's reply time (module rules) from a period's
    daily totals; the response time is `communications.response_times`'."""
    summary = DeliverySummary()
    channels: dict[str, Counter[str]] = {}
    for (channel, status), count in sorted(figures.messages.items()):
        if count:
            channels.setdefault(channel, Counter())[status] += count
    for channel, statuses in channels.items():
        total = sum(statuses.values())
        sent = sum(statuses[value.value] for value in SENT_STATUSES)
        delivered = sum(statuses[value.value] for value in DELIVERED_STATUSES)
        failed, in_doubt = statuses[MessageStatus.failed.value], statuses[MessageStatus.in_doubt.value]
        summary.total += total
        summary.sent += sent
        summary.delivered += delivered
        summary.failed += failed
        summary.in_doubt += in_doubt
        summary.by_channel[channel] = ChannelSummary(
            total=total, failed=failed, in_doubt=in_doubt, failure_rate=_rate(failed, total)
        )
    summary.failure_rate = _rate(summary.failed, summary.total)

    guest = figures.replies.get((MessageDirection.inbound.value, MessageDirection.outbound.value))
    if guest is not None and guest[0]:
        summary.response_time_minutes.guest_replies = _minutes(guest[1], guest[0])
    return summary


def _scope(hotel_id: str | None, hotels: Collection[str] | None) -> frozenset[str] | None:
    """The hotels counted: both filters apply when both are given; None is every hotel."""
    scope = None if hotels is None else frozenset(hotels)
    if hotel_id is not None:
        scope = frozenset({hotel_id}) & scope if scope is not None else frozenset({hotel_id})
    return scope


def _minutes(microseconds: int, count: int) -> float:
    return round(microseconds / MICROSECONDS_PER_MINUTE / count, MINUTES_DIGITS)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, RATE_DIGITS) if whole else 0.0
