"""Every message, outbound and inbound, with its delivery status.

An outbound message is keyed by `(reservation, step, channel)`: the row is
created before sending and looked up on every retry, so a step is never sent
twice on a channel.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel
from sqlalchemy import Column
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.database import UTCDateTime, utcnow
from guest_journey.messages import MessageDirection, MessageStatus, SendMessageInput


class MessageRecord(SQLModel, table=True):
    __tablename__ = "message"

    id: str = Field(primary_key=True, max_length=64)
    idempotency_key: str | None = Field(default=None, unique=True, max_length=300)
    reservation_id: str | None = Field(default=None, index=True, max_length=128)
    hotel_id: str | None = Field(default=None, index=True, max_length=64)
    direction: str = Field(max_length=16)
    channel: str = Field(index=True, max_length=16)
    template: str | None = Field(default=None, max_length=64)
    language: str | None = Field(default=None, max_length=16)
    step_key: str | None = Field(default=None, max_length=200)
    subject: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    status: str = Field(index=True, max_length=16)
    reason: str | None = None
    attempts: int = 0
    provider_message_id: str | None = Field(default=None, index=True, max_length=300)
    in_reply_to: str | None = Field(default=None, index=True, max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), index=True, nullable=False)
    )
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class MessageView(BaseModel):
    """A message in a journey's timeline (CONTRACT §2)."""

    id: str
    direction: MessageDirection
    channel: str
    template: str | None = None
    step_key: str | None = None
    status: MessageStatus
    reason: str | None = None
    created_at: AwareDatetime
    sent_at: AwareDatetime | None = None
    in_reply_to: str | None = None

    @classmethod
    def of(cls, record: MessageRecord) -> MessageView:
        return cls.model_validate(record, from_attributes=True)


async def get_or_create_outbound(*, session: AsyncSession, message: SendMessageInput) -> MessageRecord:
    record = await session.get(MessageRecord, message.message_id)
    if record is not None:
        return record
    record = MessageRecord(
        id=message.message_id,
        idempotency_key=message.message_key,
        reservation_id=message.reservation_id,
        hotel_id=message.hotel_id,
        direction=MessageDirection.outbound.value,
        channel=message.channel.value,
        template=message.template,
        language=message.guest.language,
        step_key=message.step_key,
        status=MessageStatus.queued.value,
        in_reply_to=message.in_reply_to,
    )
    session.add(record)
    await session.commit()
    return record


async def save_message(*, session: AsyncSession, record: MessageRecord) -> MessageRecord:
    record.updated_at = utcnow()
    session.add(record)
    await session.commit()
    return record


async def list_for_reservation(*, session: AsyncSession, reservation_id: str) -> list[MessageRecord]:
    rows = await session.exec(
        select(MessageRecord)
        .where(MessageRecord.reservation_id == reservation_id)
        .order_by(MessageRecord.created_at, MessageRecord.id)
    )
    return list(rows.all())
