"""Seeding messages as the service stores them: in the order they were created, each
staff reply stamped with its response time when it is stored, as `send_message`
does (`communications.response_times`)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel.ext.asyncio.session import AsyncSession

from communications.message_store import MessageRecord, microseconds_between
from communications.response_times import guest_waiting_since, is_staff_step
from guest_journey.messages import MessageDirection


async def add_in_order(session: AsyncSession, records: Iterable[MessageRecord]) -> None:
    for record in sorted(records, key=lambda record: record.created_at):
        if (record.direction == MessageDirection.outbound.value and is_staff_step(record.step_key)
                and record.reservation_id is not None):
            since = await guest_waiting_since(session=session, reservation_id=record.reservation_id,
                                              channel=record.channel)
            record.response_microseconds = microseconds_between(since, record.created_at)
        session.add(record)
        await session.flush()
    await session.commit()
