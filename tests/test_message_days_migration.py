"""Migration 0010 (daily totals of the messages): messages stored before it are
counted into the totals, which give then the figures of a scan of every message,
and the triggers keep them so from then on; down again, the totals and triggers
go and the messages stay. Runs on SQLite and, with `--database=postgresql`, on
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from communications.delivery_summary import summary_of
from communications.message_days import Figures
from communications.message_store import MessageRecord
from guest_journey.database import create_engine, session_factory
from guest_journey.settings import Settings
from tests.communications.test_message_days import T0, periods, seeded_messages
from tests.test_read_model_migration import _table_names, migrate


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.resolved_database_url)
    yield engine
    await engine.dispose()


# The message table's columns that later revisions added: not there at 0009 and 0010.
LATER_COLUMNS = {"response_microseconds"}


def _message_row(message: MessageRecord) -> dict[str, object]:
    columns = MessageRecord.__table__.columns.keys()  # type: ignore[attr-defined]
    return {name: getattr(message, name) for name in columns if name not in LATER_COLUMNS}


async def _insert(sessions_engine: AsyncEngine, *messages: MessageRecord) -> None:
    async with sessions_engine.begin() as connection:
        await connection.execute(MessageRecord.__table__.insert(), [_message_row(m) for m in messages])  # type: ignore[attr-defined]


async def test_up_counts_the_stored_messages_and_down_drops_the_totals_keeping_the_messages(engine):
    await migrate(engine, "0009")
    messages = seeded_messages()
    await _insert(engine, *messages)

    await migrate(engine, "0010")
    async with engine.connect() as connection:
        assert await connection.run_sync(_trigger_names)

    sessions = session_factory(engine)
    async with sessions() as session:
        for since, until in periods():  # the counts of the summary (its response time came with 0013)
            assert summary_of(await Figures.read(session, since, until, None)) == summary_of(
                await Figures.scanned(session, since, until, None)
            ), (since, until)
        before = summary_of(await Figures.read(session, None, None, None))
        assert before.total > 200 and before.response_time_minutes.guest_replies is not None
        # A message written after the migration is counted by the triggers.
        await _insert(engine, MessageRecord(id="later", hotel_id="hotel-sp", channel="email", direction="outbound",
                                            status="failed", created_at=T0 + timedelta(days=1),
                                            in_reply_to=messages[0].id))
        after = summary_of(await Figures.read(session, None, None, None))
        assert (after.total, after.failed) == (before.total + 1, before.failed + 1)
        assert after == summary_of(await Figures.scanned(session, None, None, None))

    await migrate(engine, "0009", "down")
    async with engine.connect() as connection:
        tables = await connection.run_sync(_table_names)
        triggers = await connection.run_sync(lambda sync: _trigger_names(sync))
        stored = (await connection.execute(text("select count(*) from message"))).scalar_one()
    assert "message_day" not in tables and "message_reply_day" not in tables
    assert triggers == set()
    assert stored == len(messages) + 1
    async with sessions() as session:  # messages are written as before 0010
        await _insert(engine, MessageRecord(id="after-down", channel="email", direction="outbound", status="queued"))
        assert len((await session.exec(select(MessageRecord.id))).all()) == len(messages) + 2


def _trigger_names(connection: Connection) -> set[str]:
    """The triggers on `message`, and on PostgreSQL the functions of this schema they ran."""
    if connection.dialect.name == "sqlite":
        queries = ["select name from sqlite_master where type = 'trigger' and tbl_name = 'message'"]
    else:
        queries = ["select tgname from pg_trigger where not tgisinternal and tgrelid = 'message'::regclass",
                   "select proname from pg_proc join pg_namespace on pg_namespace.oid = pronamespace "
                   "where nspname = current_schema()"]
    assert inspect(connection).has_table("message")
    return {row[0] for query in queries for row in connection.execute(text(query))}
