"""Messages from guests: stored once, matched to their reservation.

A message is matched, in this order:

1. by an explicit `reservation_id`, which must name a journey in the read
   model (else `UnknownReservation`: the API answers 404);
2. by `in_reply_to`: our message id, or the channel's id of one of our
   messages (a WhatsApp `wamid`, an e-mail `Message-ID` such as
   `<id@hotel.example>`); the reply belongs to that message's reservation;
3. by the sender's address (e-mail or phone): first against the `recipient`
   of our outbound messages (the reservation we wrote to most recently at that
   address wins), then against the guest contacts of the journeys still
   running in the read model (the latest arrival wins), for a guest we have
   not written to at that address yet.

A message that none of these match is stored without a reservation and
listed by `list_unmatched`, so staff can follow it up. Whenever `in_reply_to`
names one of our messages, the reply is linked to it (`in_reply_to` holds our
id) and the response time is known. A message redelivered by its channel (the
same `provider_message_id` on the same channel) is answered with the row
stored the first time, marked `duplicate`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.message_store import MessageRecord, normalise_address
from guest_journey.messages import MessageDirection, MessageStatus
from guest_journey.read_model import JourneyRecord, journey_of_guest
from guest_journey.reservations import Channel

IDEMPOTENCY_KEY_LENGTH = 300
ADDRESS_LENGTH = 320
PROVIDER_ID_LENGTH = 300


class UnknownReservation(LookupError):
    """An inbound message names a reservation that has no journey."""

    def __init__(self, reservation_id: str) -> None:
        super().__init__(f"no journey for reservation {reservation_id!r}")
        self.reservation_id = reservation_id


class NoMatchInScope(LookupError):
    """An inbound message recorded for some hotels only (a scoped API key) that matches no
    journey of those hotels: it is not stored, so that it cannot land in another hotel."""


class MatchedBy(StrEnum):
    reservation_id = "reservation_id"
    in_reply_to = "in_reply_to"
    sender = "sender"


@dataclass(frozen=True)
class InboundResult:
    message: MessageRecord
    matched_by: MatchedBy | None
    response_time_minutes: float | None = None
    duplicate: bool = False

    @property
    def matched(self) -> bool:
        return self.message.reservation_id is not None


@dataclass(frozen=True)
class _Match:
    reservation_id: str | None = None
    hotel_id: str | None = None
    matched_by: MatchedBy | None = None


async def store_inbound(
    *,
    session: AsyncSession,
    channel: Channel,
    sender: str,
    body: str,
    received_at: datetime,
    in_reply_to: str | None = None,
    reservation_id: str | None = None,
    provider_message_id: str | None = None,
    hotels: Collection[str] | None = None,
    template: str | None = None,
) -> InboundResult:
    """Store a guest's message, matched to its reservation (module rules). With `hotels`
    (a caller limited to those: `api.access`), only their journeys and messages are
    matched, another hotel's reservation is unknown, and a message that matches none of
    them is refused (`NoMatchInScope`) rather than kept unmatched. `template` names what
    the message is when the service wrote it for the guest (the detractor follow-up)."""
    channel = Channel(channel)
    if received_at.tzinfo is None:
        raise ValueError("received_at must carry its offset")
    if len(sender) > ADDRESS_LENGTH:
        raise ValueError(f"sender is longer than {ADDRESS_LENGTH} characters")
    if provider_message_id is not None and len(provider_message_id) > PROVIDER_ID_LENGTH:
        raise ValueError(f"provider_message_id is longer than {PROVIDER_ID_LENGTH} characters")
    key = inbound_key(channel, provider_message_id) if provider_message_id else None
    if key is not None:
        existing = await _by_key(session, key)
        if existing is not None:
            return await _duplicate(session, existing)
    replied_to = await find_message(session=session, reference=in_reply_to) if in_reply_to else None
    if replied_to is not None and hotels is not None and replied_to.hotel_id not in hotels:
        replied_to = None
    address = normalise_address(sender)
    match = await _match(session, reservation_id, replied_to, address, hotels)
    if hotels is not None and match.reservation_id is None:
        raise NoMatchInScope("no journey of your hotels matches this message: name its reservation_id")
    record = MessageRecord(
        id=str(uuid.uuid4()),
        idempotency_key=key,
        reservation_id=match.reservation_id,
        hotel_id=match.hotel_id or (replied_to.hotel_id if replied_to else None),
        direction=MessageDirection.inbound.value,
        channel=channel.value,
        template=template,
        body_text=body,
        status=MessageStatus.received.value,
        status_at=received_at,
        provider_message_id=provider_message_id,
        in_reply_to=replied_to.id if replied_to else None,
        sender=address,
        matched_by=match.matched_by.value if match.matched_by else None,
        created_at=received_at,
    )
    session.add(record)
    try:
        await session.commit()
    except IntegrityError:  # the same message, delivered twice at once
        await session.rollback()
        existing = await _by_key(session, key) if key is not None else None
        if existing is None:
            raise
        return await _duplicate(session, existing)
    return InboundResult(
        message=record,
        matched_by=match.matched_by,
        response_time_minutes=_minutes_between(replied_to.created_at, received_at)
        if replied_to
        else None,
    )


async def find_message(*, session: AsyncSession, reference: str) -> MessageRecord | None:
    """The message a reference names: our id, the channel's id, or an e-mail
    Message-ID (`<id@domain>`, with or without the brackets)."""
    reference = reference.strip()
    ids, provider_ids = [reference], [reference]
    inner = reference[1:-1] if reference.startswith("<") and reference.endswith(">") else reference
    if "@" in inner:
        ids.append(inner.split("@", 1)[0])
        provider_ids += [inner, f"<{inner}>"]
    for candidate in ids:
        record = await session.get(MessageRecord, candidate)
        if record is not None:
            return record
    rows = await session.exec(
        select(MessageRecord)
        .where(col(MessageRecord.provider_message_id).in_(provider_ids))
        .order_by(col(MessageRecord.created_at).desc())
        .limit(1)
    )
    return rows.first()


async def list_unmatched(*, session: AsyncSession, limit: int = 100) -> list[MessageRecord]:
    """Inbound messages no reservation was found for, newest first."""
    rows = await session.exec(
        select(MessageRecord)
        .where(
            col(MessageRecord.reservation_id).is_(None),
            MessageRecord.direction == MessageDirection.inbound.value,
        )
        .order_by(col(MessageRecord.created_at).desc(), col(MessageRecord.id))
        .limit(limit)
    )
    return list(rows.all())


def inbound_key(channel: Channel, provider_message_id: str) -> str:
    """The idempotency key of a message a channel delivered to us."""
    key = f"inbound:{channel.value}:{provider_message_id}"
    if len(key) <= IDEMPOTENCY_KEY_LENGTH:
        return key
    return (
        f"inbound:{channel.value}:sha256:{hashlib.sha256(provider_message_id.encode()).hexdigest()}"
    )


async def _match(
    session: AsyncSession,
    reservation_id: str | None,
    replied_to: MessageRecord | None,
    address: str | None,
    hotels: Collection[str] | None = None,
) -> _Match:
    if reservation_id is not None:
        journey = await session.get(JourneyRecord, reservation_id)
        if journey is None or (hotels is not None and journey.hotel_id not in hotels):
            raise UnknownReservation(reservation_id)
        return _Match(reservation_id, journey.hotel_id, MatchedBy.reservation_id)
    if replied_to is not None and replied_to.reservation_id is not None:
        return _Match(replied_to.reservation_id, replied_to.hotel_id, MatchedBy.in_reply_to)
    if address is not None:
        return (
            await _by_recipient(session, address, hotels)
            or await _by_guest_contact(session, address, hotels)
            or _Match()
        )
    return _Match()


async def _by_recipient(session: AsyncSession, address: str, hotels: Collection[str] | None) -> _Match | None:
    """The reservation we last wrote to at this address (of these hotels, when given)."""
    in_scope = [] if hotels is None else [col(MessageRecord.hotel_id).in_(sorted(hotels))]
    rows = await session.exec(
        select(MessageRecord.reservation_id, MessageRecord.hotel_id)
        .where(
            MessageRecord.recipient == address,
            MessageRecord.direction == MessageDirection.outbound.value,
            col(MessageRecord.reservation_id).is_not(None),
            *in_scope,
        )
        .order_by(col(MessageRecord.created_at).desc())
        .limit(1)
    )
    found = rows.first()
    return _Match(found[0], found[1], MatchedBy.sender) if found is not None else None


async def _by_guest_contact(session: AsyncSession, address: str, hotels: Collection[str] | None) -> _Match | None:
    """The running journey whose guest has this e-mail or phone (for guests we have
    not written to at that address yet)."""
    journey = await journey_of_guest(session=session, address=address, hotels=hotels)
    return _Match(journey.reservation_id, journey.hotel_id, MatchedBy.sender) if journey else None


async def _by_key(session: AsyncSession, key: str) -> MessageRecord | None:
    rows = await session.exec(select(MessageRecord).where(MessageRecord.idempotency_key == key))
    return rows.first()


async def _duplicate(session: AsyncSession, record: MessageRecord) -> InboundResult:
    minutes = None
    if record.in_reply_to is not None:
        replied_to = await session.get(MessageRecord, record.in_reply_to)
        if replied_to is not None:
            minutes = _minutes_between(replied_to.created_at, record.created_at)
    return InboundResult(
        message=record,
        matched_by=MatchedBy(record.matched_by) if record.matched_by else None,
        response_time_minutes=minutes,
        duplicate=True,
    )


def _minutes_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 60
