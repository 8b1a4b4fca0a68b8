"""Migration 0013 (response times stamped and totalled): staff replies stored before
it are stamped by the rule they were read by until then, the daily totals are
filled, and the triggers keep them from then on; down again, the stamps and
totals go and the messages stay. Runs on SQLite and, with
`--database=postgresql`, on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import delete, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from communications.message_store import MessageRecord
from communications.response_times import (
    ResponseTime,
    reply_minutes,
    response_time,
    response_time_by_hotel,
)
from guest_journey.database import create_engine, session_factory
from guest_journey.settings import Settings
from tests.communications.test_response_times import MESSAGES, at
from tests.test_read_model_migration import migrate


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.resolved_database_url)
    yield engine
    await engine.dispose()


def _row(message_id: str, rid: str, hotel: str, channel: str, direction: str, step: str | None,
         minute: float) -> dict[str, object]:
    return {"id": message_id, "reservation_id": rid, "hotel_id": hotel, "channel": channel, "direction": direction,
            "status": "received" if direction == "inbound" else "sent", "step_key": step, "attempts": 0,
            "created_at": at(minute), "updated_at": at(minute)}


async def _insert(engine: AsyncEngine, *rows: dict[str, object]) -> None:
    async with engine.begin() as connection:
        await connection.execute(MessageRecord.__table__.insert(), list(rows))  # type: ignore[attr-defined]


async def test_up_stamps_the_stored_replies_and_down_removes_the_stamps_keeping_the_messages(engine):
    await migrate(engine, "0012")
    await _insert(engine, *(_row(*message) for message in MESSAGES))  # as 0012 stored them: no stamps

    await migrate(engine, "0013")
    sessions = session_factory(engine)
    async with sessions() as session:
        # The same figures as the rule read at the time (tests/communications/test_response_times.py).
        assert await reply_minutes(session=session, reservation_id="R1") == {"s1": 12.0, "s3": 5.0, "s4": 60.0}
        assert await response_time_by_hotel(session=session) == {"sp": ResponseTime(3, 77.0),
                                                                 "rj": ResponseTime(1, 20.0)}
        whole_days = await response_time(session=session, since=at(0) - timedelta(days=2),
                                         until=at(0) + timedelta(days=2))
        assert whole_days == ResponseTime(4, 97.0)  # from the totals of the whole UTC days
    # A stamped reply stored later is counted by the triggers; one erased is taken out.
    await _insert(engine, {**_row("s7", "R3", "rj", "webchat", "outbound", "manual:g", 60), "response_microseconds": 30 * 60_000_000})
    async with engine.begin() as connection:
        await connection.execute(delete(MessageRecord).where(MessageRecord.id == "s4"))  # type: ignore[arg-type]
    async with sessions() as session:
        everything = await response_time(session=session, since=at(0) - timedelta(days=2),
                                         until=at(0) + timedelta(days=2))
        assert everything == ResponseTime(4, 97.0 - 60.0 + 30.0)

    await migrate(engine, "0012", "down")
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        columns = await connection.run_sync(lambda sync: [c["name"] for c in inspect(sync).get_columns("message")])
        stored = (await connection.execute(text("select count(*) from message"))).scalar_one()
    assert "message_response_day" not in tables and "response_microseconds" not in columns
    assert stored == len(MESSAGES)  # s4 erased, s7 added
    # The daily totals of 0010 are still kept by their triggers after the table lost a column.
    async with engine.begin() as connection:
        before = (await connection.execute(text("select sum(messages) from message_day"))).scalar_one()
        await connection.execute(text("insert into message (id, direction, channel, status, attempts, created_at, "
                                      "updated_at) values ('later', 'outbound', 'email', 'sent', 0, :t, :t)"),
                                 {"t": at(0)})
        assert (await connection.execute(text("select sum(messages) from message_day"))).scalar_one() == before + 1
