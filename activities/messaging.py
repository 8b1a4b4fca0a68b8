"""Render and deliver one message on one channel, recorded, never twice.

The message row (keyed by reservation, step and channel) is written before the
channel is called and looked up on every retry. Each attempt is recorded as
`sending` (with its number) before the provider is called, so a retry always
knows what the attempt before it left behind:

- handed over (`sent_at`): answered from the store, never sent again;
- `queued`: the attempt surely did not send it (refused connection, the
  server's own answer): sent again, as retries always did;
- `sending`: the attempt was interrupted (worker stopped, attempt timed out)
  while the provider had the message. On a channel where sending again
  replaces the message (web chat, local outbox) it is sent again; elsewhere it
  is in doubt;
- `in_doubt`: the provider may have it. A channel that reports statuses
  (WhatsApp, which echoes our message id as `biz_opaque_callback_data`) waits
  up to `wait_for_provider_status` for that report; without one — and on
  e-mail at once — the activity fails with `InDoubt`: the journey marks the
  step in doubt and staff decide, from the panel, whether to send it again.

Once the channel has a message, recording that is retried inside the
activity (heartbeating) until it succeeds: a database error never turns into a
retry that sends again. An unexpected exception is not retried: the step fails
with its reason instead of blocking the journey for hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

from sqlalchemy import exc as sa_exc
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from communications.channels.base import (
    ChannelSender,
    Delivery,
    InDoubtDeliveryError,
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from communications.message_status import claim_send_again, declare_in_doubt, record_hand_over
from communications.message_store import MessageRecord, get_or_create_outbound, save_message
from communications.response_times import guest_waiting_since, is_staff_step
from communications.staff_texts import resolve_staff_text
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
from guest_journey.telemetry import (
    message_failed,
    message_in_doubt,
    message_sent,
    message_step_failed,
)

logger = logging.getLogger(__name__)

# Failure types that no retry can fix: the workflow falls back to the next channel.
CHANNEL_UNAVAILABLE = "ChannelUnavailable"
DELIVERY_REJECTED = "DeliveryRejected"
TEMPLATE_FAILED = "TemplateFailed"
UNSUBSCRIBED = "Unsubscribed"  # a marketing message to an address that opted out: skipped
UNEXPECTED = "UnexpectedError"  # a bug or bad input: retrying would only repeat it
# The provider may have the message: no fallback, no retry; staff decide.
IN_DOUBT = "InDoubt"
NON_RETRYABLE_ERRORS = (
    CHANNEL_UNAVAILABLE, DELIVERY_REJECTED, TEMPLATE_FAILED, UNSUBSCRIBED, UNEXPECTED, IN_DOUBT
)
# Failures of the infrastructure that a later attempt may not meet: retried.
RETRYABLE_FAILURES = (
    TransientDeliveryError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.IntegrityError,
    sa_exc.TimeoutError,
    OSError,
)
HEARTBEAT_EVERY = timedelta(seconds=5)
# The workflow's heartbeat timeout: a worker that died is noticed this soon.
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
STATUS_POLL_EVERY = timedelta(seconds=1)
RECORD_RETRY_FIRST = timedelta(milliseconds=200)
RECORD_RETRY_MAX = timedelta(seconds=5)
REMEMBERED_HAND_OVERS = 10_000


class MessagingActivities:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        templates: TemplateCatalogue,
        channels: dict[Channel, ChannelSender],
        links: GuestLinks,
        secret_key: str | Sequence[str],
    ) -> None:
        self._sessions = sessions
        self._templates = templates
        self._channels = channels
        self._links = links
        self._secret_key = secret_key  # unsubscribes of erased guests are kept as digests under it (or them)
        # Hand-overs not yet recorded (the database failed): a retry on this
        # worker records them instead of declaring the message in doubt.
        self._handed_over: OrderedDict[str, Delivery] = OrderedDict()

    @activity.defn
    async def send_message(self, message: SendMessageInput) -> SendMessageResult:
        async with _heartbeating():
            try:
                return await self._send_once(message)
            except (ApplicationError, *RETRYABLE_FAILURES):
                raise
            except Exception as error:
                logger.exception("message %s: unexpected error", message.message_id)
                raise ApplicationError(
                    f"unexpected error while sending: {type(error).__name__}: {str(error)[:300]}",
                    type=UNEXPECTED,
                    non_retryable=True,
                ) from error

    async def _send_once(self, message: SendMessageInput) -> SendMessageResult:
        async with self._sessions() as session:
            if message.marketing and await is_unsubscribed(
                session=session, address=_recipient(message), secret_key=self._secret_key
            ):
                raise ApplicationError("the guest unsubscribed from offers", type=UNSUBSCRIBED, non_retryable=True)
            record = await get_or_create_outbound(
                session=session, message=message, answers_guest_since=await _answers_guest_since(session, message)
            )
            sender = self._channels.get(message.channel)
            known = await self._outcome_so_far(session, record, message, sender)
            if known is not None:
                return known
            if sender is None:
                reason = f"the {message.channel} channel is not configured"
                await _fail(session, record, reason)
                raise ApplicationError(reason, type=CHANNEL_UNAVAILABLE, non_retryable=True)
            outgoing = await self._compose(session, record, message)
            try:
                delivery = await sender.send(outgoing)
            except PermanentDeliveryError as error:
                await _fail(session, record, str(error))
                raise ApplicationError(str(error), type=DELIVERY_REJECTED, non_retryable=True) from error
            except InDoubtDeliveryError as error:
                await _declare_in_doubt(session, record, f"attempt {record.attempts}: {error}")
                return await self._settle_doubt(record.id, message, sender)
            except TransientDeliveryError as error:  # surely not sent: a retry may send it
                record.status = MessageStatus.queued.value
                record.reason = f"attempt {record.attempts}: {error}"
                await save_message(session=session, record=record)
                raise
        # Once the channel has it, recording that must not be interrupted by a
        # cancellation (worker shutdown), or a retry would find it in doubt.
        self._remember(message.message_id, delivery)
        recorded = await asyncio.shield(self._record_hand_over(message, delivery))
        message_sent(recorded.channel)
        return _result(recorded, note=recorded.reason)

    async def _outcome_so_far(
        self,
        session: AsyncSession,
        record: MessageRecord,
        message: SendMessageInput,
        sender: ChannelSender | None,
    ) -> SendMessageResult | None:
        """What an earlier attempt left: a result to answer with (or a failure to
        raise), or None when this attempt is to send the message."""
        if record.sent_at is not None:  # handed to its channel before: never again
            return _result(record, note=record.reason)
        if record.id in self._handed_over:  # handed over, its record failed: record it now
            recorded = await self._record_hand_over(message, self._handed_over[record.id])
            return _result(recorded, note=recorded.reason)
        status = MessageStatus(record.status)
        if status is MessageStatus.failed:
            raise ApplicationError(record.reason or "failed", type=DELIVERY_REJECTED, non_retryable=True)
        if status is MessageStatus.sending:
            if sender is None or sender.retry_is_safe:
                return None
            await _declare_in_doubt(
                session,
                record,
                f"attempt {record.attempts} was interrupted (the worker stopped or the attempt timed out) "
                f"while the {record.channel} provider had the message",
            )
            status = MessageStatus.in_doubt
        if status is MessageStatus.in_doubt:
            if message.send_again_request and await claim_send_again(
                session=session, record=record, request_id=message.send_again_request
            ):
                return None
            return await self._settle_doubt(record.id, message, sender)
        return None

    async def _settle_doubt(
        self, message_id: str, message: SendMessageInput, sender: ChannelSender | None
    ) -> SendMessageResult:
        """A message in doubt: sent after all when the provider's status report says
        so (waiting for it up to `wait_for_provider_status` on a channel that
        reports statuses), failed when it says that; otherwise in doubt for staff."""
        waits = sender is not None and sender.reports_status
        while True:
            async with self._sessions() as session:
                record = await session.get(MessageRecord, message_id, populate_existing=True)
            assert record is not None
            if record.sent_at is not None:
                message_sent(record.channel)
                note = f"its answer was lost, but {record.channel} reported it {record.status}"
                return _result(record, note=note)
            if record.status == MessageStatus.failed.value:
                raise ApplicationError(record.reason or "failed", type=DELIVERY_REJECTED, non_retryable=True)
            doubted_at = record.status_at or record.updated_at
            remaining = (doubted_at + message.wait_for_provider_status - utcnow()).total_seconds() if waits else 0
            if remaining <= 0:
                message_in_doubt(record.channel)
                waited = (
                    f"; no status report came within {_duration(message.wait_for_provider_status)}" if waits else ""
                )
                raise ApplicationError(
                    f"in doubt: {record.reason}{waited}", type=IN_DOUBT, non_retryable=True
                )
            await asyncio.sleep(min(remaining, STATUS_POLL_EVERY.total_seconds()))

    async def _record_hand_over(self, message: SendMessageInput, delivery: Delivery) -> MessageRecord:
        """Mark the message handed to its channel, trying again until the database takes it."""
        note = delivery.note if delivery.note is not None else message.note
        delay = RECORD_RETRY_FIRST
        while True:
            try:
                async with self._sessions() as session:
                    record = await record_hand_over(
                        session=session,
                        message_id=message.message_id,
                        provider_message_id=delivery.provider_message_id,
                        status=delivery.status,
                        at=utcnow(),
                        note=note,
                    )
                    await session.refresh(record)
            except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, OSError) as error:
                logger.warning(
                    "message %s: recording its hand-over failed (%s); trying again in %.1fs",
                    message.message_id, type(error).__name__, delay.total_seconds(),
                )
                _heartbeat()
                await asyncio.sleep(delay.total_seconds())
                delay = min(delay * 2, RECORD_RETRY_MAX)
                continue
            self._handed_over.pop(message.message_id, None)
            return record

    def _remember(self, message_id: str, delivery: Delivery) -> None:
        self._handed_over[message_id] = delivery
        while len(self._handed_over) > REMEMBERED_HAND_OVERS:
            self._handed_over.popitem(last=False)

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
            context = await resolve_staff_text(session=session, reservation_id=message.reservation_id, context=context)
            rendered = self._templates.render(message.template, message.channel, message.guest.language, context)
        except TemplateError as error:
            reason = f"template {message.template}: {error}"
            await _fail(session, record, reason)
            raise ApplicationError(reason, type=TEMPLATE_FAILED, non_retryable=True) from error
        record.language = rendered.language
        record.subject = rendered.subject
        record.body_text = rendered.text
        record.body_html = rendered.html
        # The attempt is recorded before the provider is called: a retry knows it was made.
        record.attempts += 1
        record.status = MessageStatus.sending.value
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
            "record_guest_message_failure: guest message failed on every channel",
            extra={
                "activity": "record_guest_message_failure",  # the runbook's log search finds it
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


async def _answers_guest_since(session: AsyncSession, message: SendMessageInput) -> datetime | None:
    """For a staff reply, the first guest message it answers (its response time runs from there)."""
    if not is_staff_step(message.step_key):
        return None
    return await guest_waiting_since(session=session, reservation_id=message.reservation_id,
                                     channel=message.channel.value)


async def _declare_in_doubt(session: AsyncSession, record: MessageRecord, reason: str) -> None:
    await declare_in_doubt(session=session, message_id=record.id, reason=reason, at=utcnow())


@contextlib.asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
    """Heartbeat while the activity runs, sends and waits included: a worker that
    dies is noticed within the heartbeat timeout, not the attempt's."""

    async def beat() -> None:
        while True:
            _heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY.total_seconds())

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _heartbeat() -> None:
    if activity.in_activity():
        activity.heartbeat()


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


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
