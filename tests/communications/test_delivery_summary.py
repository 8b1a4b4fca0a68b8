"""The delivery summary over a known set of messages, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from communications.delivery_summary import (
    ChannelSummary,
    DeliverySummary,
    ResponseTimes,
    delivery_summary,
)
from communications.message_store import MessageRecord
from guest_journey.database import SessionFactory
from tests.communications import database_fixtures
from tests.communications.staff_replies import add_in_order

db_sessions = database_fixtures.db_sessions

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SP, RJ = "hotel-sp", "hotel-rj"


def at(day: int, hours: int = 0, minutes: int = 0) -> datetime:
    return T0 + timedelta(days=day, hours=hours, minutes=minutes)


# id, hotel, channel, direction, status, created_at, in_reply_to
MESSAGES = [
    ("o1", SP, "whatsapp", "outbound", "read", at(0), None),
    ("o2", SP, "whatsapp", "outbound", "delivered", at(0, 1), None),
    ("o3", SP, "whatsapp", "outbound", "failed", at(0, 2), None),
    ("o4", SP, "email", "outbound", "sent", at(1), None),
    ("o5", SP, "email", "outbound", "delivered", at(1, 1), None),
    ("o6", SP, "email", "outbound", "queued", at(1, 2), None),
    ("o7", SP, "webchat", "outbound", "delivered", at(2), None),
    ("o8", RJ, "whatsapp", "outbound", "read", at(0), None),
    ("o9", RJ, "whatsapp", "outbound", "failed", at(1), None),
    ("o10", RJ, "email", "outbound", "failed", at(1, 1), None),
    ("o11", RJ, "email", "outbound", "read", at(2), None),
    ("o12", RJ, "webchat", "outbound", "delivered", at(2, 1), None),
    ("o13", SP, "whatsapp", "outbound", "sent", at(3), None),
    # Guests' replies to our messages: 30, 90 and 60 minutes.
    ("i1", SP, "whatsapp", "inbound", "received", at(0, 0, 30), "o1"),
    ("i2", SP, "email", "inbound", "received", at(1, 1, 30), "o4"),
    ("i3", RJ, "email", "inbound", "received", at(2, 1), "o11"),
    # Staff replies to guests, in their conversations: 8 and 20 minutes.
    ("h1", SP, "whatsapp", "outbound", "read", at(0, 0, 38), "i1"),
    ("h2", RJ, "email", "outbound", "sent", at(2, 1, 20), "i3"),
    # Guests' messages that answer nothing; the second one is unmatched.
    ("i4", SP, "whatsapp", "inbound", "received", at(0, 5), None),
    ("i5", None, "email", "inbound", "received", at(1, 3), None),
]
# A conversation is a reservation on a channel: the replies and what they answer share one.
CONVERSATIONS = {"i1": "R-o1", "h1": "R-o1", "i2": "R-o4", "i3": "R-o11", "h2": "R-o11"}


async def load(sessions: SessionFactory) -> None:
    async with sessions() as session:
        await add_in_order(session, [
            MessageRecord(
                id=message_id,
                reservation_id=CONVERSATIONS.get(message_id, f"R-{message_id}") if hotel else None,
                step_key=f"manual:{message_id}" if message_id.startswith("h") else None,
                hotel_id=hotel,
                channel=channel,
                direction=direction,
                status=status,
                created_at=created_at,
                updated_at=created_at,
                in_reply_to=in_reply_to,
            )
            for message_id, hotel, channel, direction, status, created_at, in_reply_to in MESSAGES
        ])


async def summary_of(sessions: SessionFactory, **filters: object) -> DeliverySummary:
    async with sessions() as session:
        return await delivery_summary(session=session, **filters)  # type: ignore[arg-type]


async def test_the_whole_data_set(db_sessions):
    await load(db_sessions)
    assert await summary_of(db_sessions) == DeliverySummary(
        total=15,
        sent=11,
        delivered=8,
        failed=3,
        failure_rate=0.2,
        avg_response_time_minutes=14.0,
        response_time_minutes=ResponseTimes(hotel_replies=14.0, guest_replies=60.0),
        by_channel={
            "email": ChannelSummary(total=6, failed=1, failure_rate=0.1667),
            "webchat": ChannelSummary(total=2, failed=0, failure_rate=0.0),
            "whatsapp": ChannelSummary(total=7, failed=2, failure_rate=0.2857),
        },
    )


async def test_one_hotel(db_sessions):
    await load(db_sessions)
    assert await summary_of(db_sessions, hotel_id=SP) == DeliverySummary(
        total=9,
        sent=7,
        delivered=5,
        failed=1,
        failure_rate=0.1111,
        avg_response_time_minutes=8.0,
        response_time_minutes=ResponseTimes(hotel_replies=8.0, guest_replies=60.0),
        by_channel={
            "email": ChannelSummary(total=3, failed=0, failure_rate=0.0),
            "webchat": ChannelSummary(total=1, failed=0, failure_rate=0.0),
            "whatsapp": ChannelSummary(total=5, failed=1, failure_rate=0.2),
        },
    )


async def test_a_period_includes_since_and_excludes_until(db_sessions):
    await load(db_sessions)
    assert await summary_of(db_sessions, since=at(1), until=at(2)) == DeliverySummary(
        total=5,
        sent=2,
        delivered=1,
        failed=2,
        failure_rate=0.4,
        avg_response_time_minutes=None,
        response_time_minutes=ResponseTimes(hotel_replies=None, guest_replies=90.0),
        by_channel={
            "email": ChannelSummary(total=4, failed=1, failure_rate=0.25),
            "whatsapp": ChannelSummary(total=1, failed=1, failure_rate=1.0),
        },
    )


async def test_a_period_and_a_hotel_together(db_sessions):
    await load(db_sessions)
    summary = await summary_of(db_sessions, since=at(2), hotel_id=RJ)
    assert (summary.total, summary.sent, summary.delivered, summary.failed) == (3, 3, 2, 0)
    assert summary.response_time_minutes == ResponseTimes(hotel_replies=20.0, guest_replies=60.0)
    assert summary.avg_response_time_minutes == 20.0  # the staff's, never the guest's


async def test_periods_in_other_offsets_mean_the_same_instants(db_sessions):
    await load(db_sessions)
    sao_paulo = timezone(timedelta(hours=-3))
    in_utc = await summary_of(db_sessions, since=at(1), until=at(2))
    elsewhere = await summary_of(
        db_sessions, since=at(1).astimezone(sao_paulo), until=at(2).astimezone(sao_paulo)
    )
    assert elsewhere == in_utc and in_utc.total == 5


async def test_no_messages_give_zeros_and_no_average(db_sessions):
    assert await summary_of(db_sessions) == DeliverySummary(
        total=0,
        sent=0,
        delivered=0,
        failed=0,
        failure_rate=0.0,
        avg_response_time_minutes=None,
        response_time_minutes=ResponseTimes(hotel_replies=None, guest_replies=None),
        by_channel={},
    )
    assert (await summary_of(db_sessions)).model_dump(mode="json") == {
        "total": 0,
        "sent": 0,
        "delivered": 0,
        "failed": 0,
        "in_doubt": 0,
        "failure_rate": 0.0,
        "avg_response_time_minutes": None,
        "response_time_minutes": {"hotel_replies": None, "guest_replies": None},
        "by_channel": {},
    }


async def test_messages_in_doubt_count_apart_and_sending_ones_only_in_the_total(db_sessions):
    async with db_sessions() as session:
        session.add_all(
            MessageRecord(id=message_id, reservation_id="R-1", hotel_id=SP, channel=channel, direction="outbound",
                          status=status, created_at=at(0, hour), updated_at=at(0, hour))
            for message_id, channel, status, hour in (
                ("d1", "email", "in_doubt", 0), ("d2", "whatsapp", "in_doubt", 1), ("s1", "email", "sending", 2),
                ("o1", "email", "sent", 3), ("f1", "email", "failed", 4),
            )
        )
        await session.commit()
    summary = await summary_of(db_sessions)
    assert (summary.total, summary.sent, summary.delivered, summary.failed, summary.in_doubt) == (5, 1, 0, 1, 2)
    assert summary.failure_rate == 0.2  # a message in doubt is not a failure (nor a success)
    assert summary.by_channel == {
        "email": ChannelSummary(total=4, failed=1, in_doubt=1, failure_rate=0.25),
        "whatsapp": ChannelSummary(total=1, failed=0, in_doubt=1, failure_rate=0.0),
    }


async def test_a_period_without_an_offset_is_refused(db_sessions):
    with pytest.raises(ValueError, match="since"):
        await summary_of(db_sessions, since=datetime(2025, 3, 1))
