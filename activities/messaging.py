"""Render and deliver one message on one channel, recorded, idempotently.

The message row (keyed by reservation, step and channel) is written before
the channel is called and looked up on every retry: a message already sent is
answered from the store, never sent again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from communications.channels.base import (
    ChannelSender,
    Delivery,
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from communications.message_status import record_hand_over
from communications.message_store import MessageRecord, get_or_create_outbound, save_message
from communications.templates import TemplateCatalogue, TemplateError
from communications.unsubscribes import is_unsubscribed
from guest_journey.database import SessionFactory, utcnow
from guest_journey.guest_links import GuestLinks
from guest_journey.messages import (
    MessageFailureNotice,
    MessageStatus,
    SendMessageInput,
    SendMessageResult,
)
from guest_journey.reservations import Channel
from guest_journey.telemetry import message_failed, message_sent, message_step_failed

logger = logging.getLogger(__name__)

# Failure types that no retry can fix: the workflow falls back to the next channel.
CHANNEL_UNAVAILABLE = "ChannelUnavailable"
DELIVERY_REJECTED = "DeliveryRejected"
TEMPLATE_FAILED = "TemplateFailed"
UNSUBSCRIBED = "Unsubscribed"  # a marketing message to an address that opted out: skipped
NON_RETRYABLE_ERRORS = (CHANNEL_UNAVAILABLE, DELIVERY_REJECTED, TEMPLATE_FAILED, UNSUBSCRIBED)


class MessagingActivities:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        templates: TemplateCatalogue,
        channels: dict[Channel, ChannelSender],
        links: GuestLinks,
        secret_key: str,
    ) -> None:
        self._sessions = sessions
        self._templates = templates
        self._channels = channels
        self._links = links
        self._secret_key = secret_key  # unsubscribes of erased guests are kept as digests under it

    @activity.defn
    async def send_message(self, message: SendMessageInput) -> SendMessageResult:
        async with self._sessions() as session:
            if message.marketing and await is_unsubscribed(
                session=session, address=_recipient(message), secret_key=self._secret_key
            ):
                raise ApplicationError("the guest unsubscribed from offers", type=UNSUBSCRIBED, non_retryable=True)
            record = await get_or_create_outbound(session=session, message=message)
            if record.sent_at is not None:  # handed to its channel before: never again
                return _result(record, note=record.reason)
            if record.status == MessageStatus.failed:
                raise ApplicationError(record.reason or "failed", type=DELIVERY_REJECTED, non_retryable=True)
            sender = self._channels.get(message.channel)
            if sender is None:
                reason = f"the {message.channel} channel is not configured"
                await _fail(session, record, reason)
                raise ApplicationError(reason, type=CHANNEL_UNAVAILABLE, non_retryable=True)
            outgoing = await self._compose(session, record, message)
            record.attempts += 1
            try:
                delivery = await sender.send(outgoing)
            except PermanentDeliveryError as error:
                await _fail(session, record, str(error))
                raise ApplicationError(str(error), type=DELIVERY_REJECTED, non_retryable=True) from error
            except TransientDeliveryError as error:
                record.reason = f"attempt {record.attempts}: {error}"
                await save_message(session=session, record=record)
                raise
            if delivery.note is None and message.note is not None:  # the channel's note, else the journey's
                delivery = delivery.model_copy(update={"note": message.note})
            # Once the channel has it, recording that must not be interrupted by a
            # cancellation (worker shutdown), or a retry would send it again.
            await asyncio.shield(_record_handed_over(session, record, delivery))
            message_sent(record.channel)
            return _result(record, note=delivery.note)

    async def _compose(
        self, session: AsyncSession, record: MessageRecord, message: SendMessageInput
    ) -> Outgoing:
        departure = datetime.fromisoformat(message.context["departure"])
        offer = message.context.get("upsell_offer")
        context = {
            "guest_name": message.guest.name,
            "hotel_id": message.hotel_id,
            **message.context,
            **self._links.for_message(message.reservation_id, departure, offer),
        }
        try:
            rendered = self._templates.render(message.template, message.channel, message.guest.language, context)
        except TemplateError as error:
            reason = f"template {message.template}: {error}"
            await _fail(session, record, reason)
            raise ApplicationError(reason, type=TEMPLATE_FAILED, non_retryable=True) from error
        record.language = rendered.language
        record.subject = rendered.subject
        record.body_text = rendered.text
        record.body_html = rendered.html
        await save_message(session=session, record=record)
        return Outgoing(
            message_id=message.message_id,
            reservation_id=message.reservation_id,
            channel=message.channel,
            recipient=_recipient(message),
            guest_name=message.guest.name,
            rendered=rendered,
            marketing=message.marketing,
            in_reply_to=message.in_reply_to,
            reply_token=self._links.reply_token(message.message_id),
            unsubscribe_url=context.get("unsubscribe_url") if message.marketing else None,
            window_open=message.window_open,
        )

    @activity.defn
    async def record_guest_message_failure(self, notice: MessageFailureNotice) -> None:
        """Every channel of a step failed: say so in the log, without the guest's address."""
        message_step_failed(notice.template)
        logger.error(
            "guest message failed",
            extra={
                "reservation_id": notice.reservation_id,
                "hotel_id": notice.hotel_id,
                "step": notice.step_key,
                "template": notice.template,
                "channels": [channel.value for channel in notice.channels],
                "reason": notice.reason,
            },
        )


def _recipient(message: SendMessageInput) -> str:
    guest = message.guest
    if message.channel is Channel.email and guest.email:
        return guest.email
    if message.channel is Channel.whatsapp and guest.phone:
        return guest.phone
    if message.channel is Channel.webchat:
        return message.reservation_id
    raise ApplicationError(f"the guest has no address for {message.channel}", type=CHANNEL_UNAVAILABLE, non_retryable=True)


async def _record_handed_over(session: AsyncSession, record: MessageRecord, delivery: Delivery) -> None:
    """Mark the message handed to its channel (see `record_hand_over`)."""
    await record_hand_over(
        session=session,
        message_id=record.id,
        provider_message_id=delivery.provider_message_id,
        status=delivery.status,
        at=utcnow(),
        note=delivery.note,
    )
    await session.refresh(record)


async def _fail(session: AsyncSession, record: MessageRecord, reason: str) -> None:
    record.status = MessageStatus.failed.value
    record.reason = reason
    await save_message(session=session, record=record)
    message_failed(record.channel)


def _result(record: MessageRecord, note: str | None) -> SendMessageResult:
    return SendMessageResult(
        message_id=record.id,
        channel=Channel(record.channel),
        status=MessageStatus(record.status),
        sent_at=record.sent_at or record.updated_at,
        note=note,
    )
