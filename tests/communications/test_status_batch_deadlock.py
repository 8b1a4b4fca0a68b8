"""A batch of status reports that PostgreSQL undoes to break a deadlock over the
daily totals' rows (`communications.message_days`) is applied again, one report at
a time: nothing is lost and the webhook is not answered with an error.

PostgreSQL only: SQLite has one writer at a time, so no deadlock to break."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import select

from communications.message_days import MessageDayRecord
from communications.message_status import StatusReport, apply_status_updates
from communications.message_store import MessageRecord
from guest_journey.database import SessionFactory
from guest_journey.messages import MessageStatus
from guest_journey.settings import Settings
from tests.communications.database_fixtures import _postgres_schema

D1 = datetime(2026, 3, 18, 12, tzinfo=UTC)
D2 = D1 + timedelta(days=1)
LOCK_ROW = ("SELECT messages FROM message_day WHERE day = CAST(:day AS date) AND hotel_id = 'hotel-sp' "
            "AND channel = 'whatsapp' AND status = 'sent' FOR UPDATE")


@pytest.fixture
async def pg_sessions(settings: Settings) -> AsyncIterator[SessionFactory]:
    async for sessions in _postgres_schema(settings):
        yield sessions


async def blocked_by(watcher: AsyncConnection, holder: int) -> None:
    """Until a session waits for a lock that the session `holder` (its pid) holds."""
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        waiting = (await watcher.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE CAST(:holder AS integer) = ANY(pg_blocking_pids(pid))"),
            {"holder": holder},
        )).scalar_one()
        await watcher.rollback()  # the next look takes a new snapshot of the sessions
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("nobody waited on the lock")


async def test_a_batch_undone_by_a_deadlock_is_applied_again(pg_sessions):
    async with pg_sessions() as session:
        for message_id, day in (("a", D1), ("b", D2)):
            session.add(MessageRecord(id=message_id, hotel_id="hotel-sp", channel="whatsapp", direction="outbound",
                                      status="sent", sent_at=day, provider_message_id=f"wamid.{message_id}",
                                      created_at=day, updated_at=day))
        await session.commit()
    engine = pg_sessions.kw["bind"]
    async with engine.connect() as other, engine.connect() as watcher:
        # The other writer is never the one undone: it waits longer before looking for deadlocks.
        await other.execute(text("SET deadlock_timeout = '60s'"))
        holder = (await other.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await other.execute(text(LOCK_ROW), {"day": D2.date()})  # held: the batch will wait for it
        reports = [StatusReport(provider_message_id=f"wamid.{message_id}", status=MessageStatus.read,
                                at=day + timedelta(minutes=5)) for message_id, day in (("a", D1), ("b", D2))]

        async def batch() -> list[MessageRecord | None]:
            async with pg_sessions() as session:
                return await apply_status_updates(session=session, reports=reports)

        applying = asyncio.create_task(batch())
        await blocked_by(watcher, holder)  # the batch holds day 1's rows and waits for day 2's
        await other.execute(text(LOCK_ROW), {"day": D1.date()})  # returns once the batch is undone
        await other.commit()
        found = await asyncio.wait_for(applying, 60)

    assert [record.id if record else None for record in found] == ["a", "b"]
    async with pg_sessions() as session:
        assert [(await session.get(MessageRecord, i)).status for i in ("a", "b")] == ["read", "read"]
        totals = (await session.exec(select(MessageDayRecord.status, MessageDayRecord.messages))).all()
    assert sorted(totals) == [("read", 1), ("read", 1), ("sent", 0), ("sent", 0)]
