"""The daily totals (`communications.message_days`) give exactly the figures of a scan
of every message: over messages of many days, hotels, channels and statuses, after
delivery reports, doubts, resends and a deletion, for periods that start and end
anywhere, on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone

from sqlmodel import select

from communications.delivery_summary import DeliverySummary, delivery_summary, summary_of
from communications.message_days import Figures, MessageDayRecord, split
from communications.message_status import apply_status_update, declare_in_doubt
from communications.message_store import MessageRecord, save_message
from guest_journey.database import SessionFactory
from guest_journey.messages import MessageStatus
from tests.communications import database_fixtures

db_sessions = database_fixtures.db_sessions

T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
HOTELS = ("hotel-sp", "hotel-rj", "hotel-ba", None)
CHANNELS = ("whatsapp", "email", "webchat")
OUTBOUND = ("queued", "sending", "sent", "delivered", "read", "failed", "in_doubt")
SAO_PAULO = timezone(timedelta(hours=-3))


def seeded_messages(count: int = 400, seed: int = 14) -> list[MessageRecord]:
    rng = random.Random(seed)
    messages: list[MessageRecord] = []
    for index in range(count):
        created_at = T0 + timedelta(days=rng.uniform(0, 12))
        created_at = created_at.replace(microsecond=rng.randrange(1_000_000))
        replied = rng.choice(messages) if messages and rng.random() < 0.3 else None
        if replied is not None:
            created_at = replied.created_at + timedelta(minutes=rng.uniform(0.5, 2_000), microseconds=rng.randrange(999))
        outbound = rng.random() < 0.7 if replied is None else replied.direction == "inbound"
        hotel = replied.hotel_id if replied is not None else rng.choice(HOTELS)
        messages.append(MessageRecord(
            id=f"m{index:04d}", reservation_id=f"R-{index % 37}" if hotel else None, hotel_id=hotel,
            channel=replied.channel if replied is not None else rng.choice(CHANNELS),
            direction="outbound" if outbound else "inbound",
            status=rng.choice(OUTBOUND) if outbound else "received",
            created_at=created_at, updated_at=created_at,
            in_reply_to=replied.id if replied is not None else None,
            provider_message_id=f"p{index:04d}" if outbound else None,
        ))
    return sorted(messages, key=lambda message: message.created_at)


async def load_and_change(sessions: SessionFactory) -> None:
    """Messages written as the app writes them, then changed by every path that changes them."""
    rng = random.Random(15)
    messages = seeded_messages()
    async with sessions() as session:
        for message in messages:
            session.add(message)
            await session.commit()
    outbound = [message.id for message in messages if message.direction == "outbound"]
    async with sessions() as session:
        for message_id in rng.sample(outbound, 60):  # delivery reports, late and out of order
            status = rng.choice((MessageStatus.delivered, MessageStatus.read, MessageStatus.failed, MessageStatus.sent))
            await apply_status_update(session=session, message_id=message_id, status=status,
                                      at=T0 + timedelta(days=rng.uniform(0, 14)))
        for message_id in rng.sample(outbound, 15):  # answers lost
            await declare_in_doubt(session=session, message_id=message_id, reason="timeout", at=T0)
        for message_id in rng.sample(outbound, 15):  # sent again by staff, moved, or re-channelled
            record = await session.get(MessageRecord, message_id)
            assert record is not None
            record.status = rng.choice(OUTBOUND)
            record.channel = rng.choice(CHANNELS)
            await save_message(session=session, record=record)
        replied_to = {message.in_reply_to for message in messages}
        unreplied = [message.id for message in messages if message.id not in replied_to]
        for message_id in rng.sample(unreplied, 5):
            record = await session.get(MessageRecord, message_id)
            await session.delete(record)
        await session.commit()


def reference(rows: list[MessageRecord], since: datetime | None, until: datetime | None,
              scope: frozenset[str] | None) -> DeliverySummary:
    """The module's rules applied in Python to every message."""
    def counted(message: MessageRecord) -> bool:
        return ((since is None or message.created_at >= since) and (until is None or message.created_at < until)
                and (scope is None or message.hotel_id in scope))

    figures = Figures()
    by_id = {message.id: message for message in rows}
    for message in filter(counted, rows):
        if message.direction == "outbound":
            figures.messages[(message.channel, message.status)] += 1
        replied = by_id.get(message.in_reply_to) if message.in_reply_to else None
        if replied is not None:
            key = (message.direction, replied.direction)
            count, microseconds = figures.replies.get(key, (0, 0))
            figures.replies[key] = (count + 1, microseconds + (message.created_at - replied.created_at)
                                    // timedelta(microseconds=1))
    return summary_of(figures)


def periods() -> list[tuple[datetime | None, datetime | None]]:
    rng = random.Random(16)
    chosen: list[tuple[datetime | None, datetime | None]] = [
        (None, None), (T0 + timedelta(days=3), None), (None, T0 + timedelta(days=5)),
        (T0 + timedelta(days=2), T0 + timedelta(days=9)),  # UTC midnights: totals only
        (datetime(2025, 3, 4, tzinfo=SAO_PAULO), datetime(2025, 3, 11, tzinfo=SAO_PAULO)),  # a local week
        (T0 + timedelta(days=4, hours=5), T0 + timedelta(days=4, hours=19)),  # inside one day
        (T0 + timedelta(days=6), T0 + timedelta(days=6)),  # empty
    ]
    for _ in range(12):
        start = T0 + timedelta(days=rng.uniform(-1, 13))
        chosen.append((start, start + timedelta(days=rng.uniform(0, 8))))
    return chosen


SCOPES = (None, frozenset({"hotel-sp"}), frozenset({"hotel-rj", "hotel-ba"}), frozenset({"hotel-xx"}))


async def test_the_totals_give_exactly_the_figures_of_every_message(db_sessions):
    await load_and_change(db_sessions)
    async with db_sessions() as session:
        rows = list((await session.exec(select(MessageRecord))).all())
        assert any(message.hotel_id is None for message in rows)
        for since, until in periods():
            for scope in SCOPES:
                expected = reference(rows, since, until, scope)
                scanned = summary_of(await Figures.scanned(session, since, until, scope))
                summary = await delivery_summary(session=session, since=since, until=until, hotels=scope)
                assert summary == scanned == expected, (since, until, scope)
        everything = await delivery_summary(session=session)
        assert everything.total > 200 and everything.in_doubt and everything.response_time_minutes.guest_replies


async def test_a_deleted_or_changed_message_leaves_no_trace_in_the_totals(db_sessions):
    async with db_sessions() as session:
        session.add(MessageRecord(id="o1", hotel_id="hotel-sp", channel="email", direction="outbound",
                                  status="queued", created_at=T0, updated_at=T0))
        await session.commit()
        record = await session.get(MessageRecord, "o1")
        assert record is not None
        record.status = "sent"
        await save_message(session=session, record=record)
        await session.delete(record)
        await session.commit()
        totals = (await session.exec(select(MessageDayRecord.status, MessageDayRecord.messages))).all()
        assert sorted(totals) == [("queued", 0), ("sent", 0)]
        assert await delivery_summary(session=session) == DeliverySummary()


def test_a_period_splits_into_whole_utc_days_and_its_edges():
    local_week = (datetime(2025, 3, 4, tzinfo=SAO_PAULO), datetime(2025, 3, 11, tzinfo=SAO_PAULO))
    assert split(*local_week) == (
        (date(2025, 3, 5), date(2025, 3, 11)),
        [(local_week[0], datetime(2025, 3, 5, tzinfo=UTC)), (datetime(2025, 3, 11, tzinfo=UTC), local_week[1])],
    )
    assert split(None, None) == ((None, None), [])
    assert split(T0, T0 + timedelta(days=2)) == ((date(2025, 3, 1), date(2025, 3, 3)), [])
    within = (T0 + timedelta(hours=1), T0 + timedelta(hours=20))
    assert split(*within) == (None, [within])
    assert split(T0 + timedelta(hours=1), None) == ((date(2025, 3, 2), None), [(T0 + timedelta(hours=1), T0 + timedelta(days=1))])
