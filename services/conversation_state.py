"""What staff decided about a conversation (a reservation on a channel): who
took it ("assign to me") and whether it is done.

A conversation marked done leaves the inbox's open list until the guest
writes again in it. One row per conversation, created the first time staff
act on it; the conversations themselves are read from the message store
(`services.conversations`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.database import UTCDateTime, utcnow

ASSIGNEE_LENGTH = 64


class ConversationState(SQLModel, table=True):
    __tablename__ = "conversation_state"
    __table_args__ = (
        # The inbox's live check: has anything changed since the page last looked.
        Index("ix_conversation_state_updated_at", "updated_at"),
    )

    reservation_id: str = Field(primary_key=True, max_length=128)
    channel: str = Field(primary_key=True, max_length=16)
    hotel_id: str | None = Field(default=None, max_length=64)
    assignee: str | None = Field(default=None, index=True, max_length=ASSIGNEE_LENGTH)
    assigned_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    done_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


async def _state(session: AsyncSession, reservation_id: str, channel: str, hotel_id: str | None) -> ConversationState:
    state = await session.get(ConversationState, (reservation_id, channel), populate_existing=True)
    if state is not None:
        return state
    state = ConversationState(reservation_id=reservation_id, channel=channel, hotel_id=hotel_id)
    session.add(state)
    try:
        await session.commit()
    except IntegrityError:  # someone else acted on it at the same moment: theirs is the row
        await session.rollback()
        found = await session.get(ConversationState, (reservation_id, channel), populate_existing=True)
        assert found is not None
        return found
    return state


async def assign(
    *, session: AsyncSession, reservation_id: str, channel: str, hotel_id: str | None, assignee: str | None,
    now: datetime | None = None,
) -> ConversationState:
    """Give the conversation to `assignee` (None: to nobody)."""
    state = await _state(session, reservation_id, channel, hotel_id)
    moment = now or utcnow()
    state.assignee = assignee[:ASSIGNEE_LENGTH] if assignee else None
    state.assigned_at = moment if assignee else None
    state.updated_at = moment
    session.add(state)
    await session.commit()
    return state


async def mark_done(
    *, session: AsyncSession, reservation_id: str, channel: str, hotel_id: str | None, done: bool = True,
    now: datetime | None = None,
) -> ConversationState:
    """Mark the conversation done (it leaves the open list until the guest writes again), or open again."""
    state = await _state(session, reservation_id, channel, hotel_id)
    moment = now or utcnow()
    state.done_at = moment if done else None
    state.updated_at = moment
    session.add(state)
    await session.commit()
    return state
