"""Response time means one thing: from a guest's message to the first staff reply
in that conversation (a reservation on a channel), on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from communications.message_store import MessageRecord
from communications.response_times import (
    ResponseTime,
    reply_minutes,
    response_time,
    response_time_by_hotel,
)
from guest_journey.database import SessionFactory
from tests.communications import database_fixtures
from tests.communications.staff_replies import add_in_order

db_sessions = database_fixtures.db_sessions

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# id, reservation, hotel, channel, direction, step, minute
MESSAGES = [
    # R1 on WhatsApp: two guest messages, then a reply 12 min after the first; the
    # second reply answers nothing new; a third guest message, answered after 5 min.
    ("g1", "R1", "sp", "whatsapp", "inbound", None, 0),
    ("g2", "R1", "sp", "whatsapp", "inbound", None, 4),
    ("s1", "R1", "sp", "whatsapp", "outbound", "manual:a", 12),
    ("s2", "R1", "sp", "whatsapp", "outbound", "manual:b", 13),
    ("g3", "R1", "sp", "whatsapp", "inbound", None, 30),
    ("s3", "R1", "sp", "whatsapp", "outbound", "manual:c", 35),
    # R1 by e-mail is another conversation: the WhatsApp replies do not answer it.
    ("g4", "R1", "sp", "email", "inbound", None, 1),
    ("s4", "R1", "sp", "email", "outbound", "manual:d", 61),
    # The journey's own message answers nobody; staff writing first has no response time.
    ("j1", "R2", "rj", "webchat", "outbound", "checkin_invitation", 0),
    ("g5", "R2", "rj", "webchat", "inbound", None, 2),
    ("j2", "R2", "rj", "webchat", "outbound", "checkin_reminder", 3),
    ("s5", "R2", "rj", "webchat", "outbound", "manual:e", 22),
    ("s6", "R3", "rj", "webchat", "outbound", "manual:f", 40),
]


async def load(sessions: SessionFactory) -> None:
    async with sessions() as session:
        await add_in_order(session, [
            MessageRecord(id=message_id, reservation_id=rid, hotel_id=hotel, channel=channel, direction=direction,
                          status="received" if direction == "inbound" else "sent", step_key=step,
                          created_at=at(minute), updated_at=at(minute))
            for message_id, rid, hotel, channel, direction, step, minute in MESSAGES
        ])


async def test_from_the_first_unanswered_guest_message_to_the_first_staff_reply(db_sessions):
    await load(db_sessions)
    async with db_sessions() as session:
        assert await reply_minutes(session=session, reservation_id="R1") == {"s1": 12.0, "s3": 5.0, "s4": 60.0}
        assert await reply_minutes(session=session, reservation_id="R2") == {"s5": 20.0}
        assert await reply_minutes(session=session, reservation_id="R3") == {}
        by_hotel = await response_time_by_hotel(session=session)
        assert by_hotel == {"sp": ResponseTime(3, 77.0), "rj": ResponseTime(1, 20.0)}
        assert by_hotel["sp"].average_minutes == 25.67
        assert (await response_time(session=session)).average_minutes == 24.25


async def test_a_period_counts_the_replies_made_in_it_and_a_scope_its_hotels(db_sessions):
    await load(db_sessions)
    async with db_sessions() as session:
        later = await response_time(session=session, since=at(20), until=at(61))
        assert later == ResponseTime(2, 25.0)  # s3 and s5; s4 at minute 61 is outside
        assert await response_time(session=session, hotels={"rj"}) == ResponseTime(1, 20.0)
        assert (await response_time(session=session, hotels=set())).average_minutes is None
