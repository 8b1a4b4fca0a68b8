"""Every message, outbound and inbound, with its delivery status.

An outbound message is keyed by `(reservation, step, channel)`: the row is
created before sending and looked up on every retry, so a step is never sent
twice on a channel. It records the guest's address on its channel
(`recipient`: the e-mail address or E.164 phone), by which an inbound message
without other clues is matched to its reservation. An inbound message records
its `sender` and how it was matched (`matched_by`). Status changes after the
hand-over (delivered, read, failed) come from the channel and are kept in
`communications.message_status`, which also sets `status_at`, `delivered_at`
and `read_at` here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email.utils import parseaddr

from pydantic import AwareDatetime, BaseModel
from sqlalchemy import BigInteger, Column, Index, text
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.database import UTCDateTime, utcnow
from guest_journey.messages import MessageDirection, MessageStatus, SendMessageInput
from guest_journey.reservations import Channel

_PHONE = re.compile(r"^\+?[\d\s().-]+$")


class MessageRecord(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        # The delivery summary reads only these indexes: outbound messages of a
        # period (of a hotel), the replies of a period, and what they reply to.
        Index("ix_message_summary", "direction", "created_at", "hotel_id", "channel", "status"),
        Index(
            "ix_message_hotel_summary", "hotel_id", "direction", "created_at", "channel", "status"
        ),
        Index(
            "ix_message_replies",
            "created_at",
            "hotel_id",
            "direction",
            "in_reply_to",
            sqlite_where=text("in_reply_to IS NOT NULL"),
            postgresql_where=text("in_reply_to IS NOT NULL"),
        ),
        Index("ix_message_replied_to", "id", "direction", "created_at"),
        # A journey's timeline: its messages in order.
        Index("ix_message_reservation_timeline", "reservation_id", "created_at"),
        # The inbox: the recent messages of conversations (a guest's, or a staff reply),
        # and its live check of what changed (`services.conversations`).
        Index(
            "ix_message_conversation",
            "created_at",
            "reservation_id",
            "channel",
            sqlite_where=text("direction = 'inbound' OR step_key LIKE 'manual:%'"),
            postgresql_where=text("direction = 'inbound' OR step_key LIKE 'manual:%'"),
        ),
        Index("ix_message_updated_at", "updated_at"),
    )

    id: str = Field(primary_key=True, max_length=64)
    idempotency_key: str | None = Field(default=None, unique=True, max_length=300)
    reservation_id: str | None = Field(default=None, max_length=128)
    hotel_id: str | None = Field(default=None, max_length=64)
    direction: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    template: str | None = Field(default=None, max_length=64)
    language: str | None = Field(default=None, max_length=16)
    step_key: str | None = Field(default=None, max_length=200)
    subject: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    status: str = Field(max_length=16)
    reason: str | None = None
    attempts: int = 0
    provider_message_id: str | None = Field(default=None, index=True, max_length=300)
    in_reply_to: str | None = Field(default=None, index=True, max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), index=True, nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    status_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    read_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    recipient: str | None = Field(default=None, index=True, max_length=320)
    sender: str | None = Field(default=None, max_length=320)
    matched_by: str | None = Field(default=None, max_length=16)
    # A staff reply that answered a guest: its response time, stamped when it is
    # created (`communications.response_times`); the daily totals sum it.
    response_microseconds: int | None = Field(default=None, sa_column=Column(BigInteger()))


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
    delivered_at: AwareDatetime | None = None
    read_at: AwareDatetime | None = None
    in_reply_to: str | None = None

    @classmethod
    def of(cls, record: MessageRecord) -> MessageView:
        return cls.model_validate(record, from_attributes=True)


async def get_or_create_outbound(
    *, session: AsyncSession, message: SendMessageInput, answers_guest_since: datetime | None = None
) -> MessageRecord:
    """The message's row, created (queued) unless it exists. A staff reply is given
    `answers_guest_since`, the first guest message it answers (`response_times`)."""
    record = await session.get(MessageRecord, message.message_id)
    if record is not None:
        return record
    created_at = utcnow()
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
        recipient=recipient_address(message),
        created_at=created_at,
        updated_at=created_at,
        response_microseconds=microseconds_between(answers_guest_since, created_at),
    )
    session.add(record)
    await session.commit()
    return record


def microseconds_between(start: datetime | None, end: datetime) -> int | None:
    """Whole microseconds from `start` to `end` (None without a start)."""
    return None if start is None else (end - start) // timedelta(microseconds=1)


async def save_message(*, session: AsyncSession, record: MessageRecord) -> MessageRecord:
    record.updated_at = utcnow()
    session.add(record)
    await session.commit()
    return record


async def list_for_reservation(
    *, session: AsyncSession, reservation_id: str
) -> list[MessageRecord]:
    rows = await session.exec(
        select(MessageRecord)
        .where(MessageRecord.reservation_id == reservation_id)
        .order_by(col(MessageRecord.created_at), col(MessageRecord.id))
    )
    return list(rows.all())


def recipient_address(message: SendMessageInput) -> str | None:
    """The guest's address on the message's channel, normalised; None for web chat."""
    guest = message.guest
    if message.channel is Channel.email:
        return normalise_address(guest.email)
    if message.channel is Channel.whatsapp:
        return normalise_address(guest.phone)
    return None


def normalise_address(address: str | None) -> str | None:
    """An e-mail address (lower case, display name dropped) or an E.164 phone number.

    `Ana <Ana@Example.com>` -> `ana@example.com`; `55 11 99999-0000` (as WhatsApp
    gives a sender, without the plus) -> `+5511999990000`. Anything else is
    returned stripped.
    """
    if address is None or not address.strip():
        return None
    address = address.strip()
    if "@" in address:
        return parseaddr(address)[1].strip().lower() or None
    if _PHONE.match(address):
        digits = "".join(character for character in address if character.isdigit())
        if 7 <= len(digits) <= 15:
            return f"+{digits}"
    return address
