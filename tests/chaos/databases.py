"""What the service's database says about the messages of a chaos run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import select

from communications.message_store import MessageRecord
from guest_journey.database import create_engine, session_factory
from guest_journey.schema import upgrade_database


async def migrate(database_url: str) -> None:
    """The schema at its head, before the processes of a test open the database together."""
    engine = create_engine(database_url)
    try:
        await upgrade_database(engine)
    finally:
        await engine.dispose()


async def messages_retried(database_url: str, channel: str) -> int:
    """How many outbound messages of `channel` took more than one attempt."""
    return await _count(database_url, MessageRecord.channel == channel, MessageRecord.attempts > 1)


async def messages_waiting_to_retry(database_url: str, channel: str) -> int:
    """How many outbound messages of `channel` have a failed attempt and are not sent yet."""
    return await _count(
        database_url,
        MessageRecord.channel == channel,
        MessageRecord.sent_at.is_(None),  # type: ignore[union-attr]
        MessageRecord.reason.startswith("attempt "),  # type: ignore[union-attr]
    )


async def _count(database_url: str, *conditions: Any) -> int:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            return int((await session.exec(select(func.count()).where(*conditions))).one())
    finally:
        await engine.dispose()


async def message_ids_by_provider_id(database_url: str, channel: str) -> dict[str, str]:
    """Provider message id (e.g. WhatsApp's `wamid.`) -> our message id, for `channel`."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.exec(
                select(MessageRecord.provider_message_id, MessageRecord.id).where(
                    MessageRecord.channel == channel,
                    MessageRecord.provider_message_id.is_not(None),  # type: ignore[union-attr]
                )
            )
            return {provider_id: message_id for provider_id, message_id in rows.all() if provider_id}
    finally:
        await engine.dispose()


async def most_attempts(database_url: str, channel: str) -> int:
    """The most attempts any outbound message of `channel` took."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            query = select(func.max(MessageRecord.attempts)).where(MessageRecord.channel == channel)
            return int((await session.exec(query)).one() or 0)
    finally:
        await engine.dispose()


async def outbound_statuses(database_url: str) -> dict[str, str]:
    """Our message id -> current status, of every outbound message."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.exec(
                select(MessageRecord.id, MessageRecord.status).where(MessageRecord.direction == "outbound")
            )
            return {message_id: status for message_id, status in rows.all()}
    finally:
        await engine.dispose()
