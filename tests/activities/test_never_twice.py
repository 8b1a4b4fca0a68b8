"""A message whose provider's answer is lost is never sent again blindly.

Each test plays the attempt that went wrong, then the retry Temporal would run,
and counts what reached the provider.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.messaging import IN_DOUBT, UNEXPECTED, MessagingActivities
from communications.message_status import apply_status_update, status_history
from communications.message_store import MessageRecord
from communications.templates import TemplateCatalogue
from guest_journey.database import utcnow
from guest_journey.guest_links import GuestLinks
from guest_journey.messages import MessageStatus, SendMessageInput
from guest_journey.reservations import Channel
from tests.factories import make_invitation
from tests.recording_sender import RecordingSender


class StatusReportingSender(RecordingSender):
    """A provider that reports statuses later (as WhatsApp's webhooks do)."""

    reports_status = True


class SafeToRepeatSender(RecordingSender):
    """A channel where sending again replaces the message (web chat, the outbox)."""

    retry_is_safe = True


class InterruptedSender(RecordingSender):
    """The provider has the message; the worker stops before the answer arrives."""

    async def send(self, outgoing):  # type: ignore[no-untyped-def]
        self.calls += 1
        self.sent.append(outgoing)
        raise asyncio.CancelledError


def activities(sessions, **channels: RecordingSender) -> MessagingActivities:  # type: ignore[no-untyped-def]
    return MessagingActivities(
        sessions=sessions,
        templates=TemplateCatalogue.load(),
        channels={Channel(name): sender for name, sender in channels.items()},
        links=GuestLinks("https://stay.example.com", "secret"),
        secret_key="secret",
    )


async def send(messaging: MessagingActivities, message: SendMessageInput):  # type: ignore[no-untyped-def]
    return await ActivityEnvironment().run(messaging.send_message, message)


async def stored(sessions, message: SendMessageInput) -> MessageRecord:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        record = await session.get(MessageRecord, message.message_id)
    assert record is not None
    return record


async def test_an_email_whose_answer_was_lost_is_in_doubt_and_never_sent_again(sessions):
    email = RecordingSender(Channel.email)
    email.in_doubt_failures = 1
    messaging = activities(sessions, email=email)

    for _ in range(3):  # the attempt, then retries (and staff looking again)
        with pytest.raises(ApplicationError) as raised:
            await send(messaging, make_invitation())
        assert raised.value.type == IN_DOUBT and raised.value.non_retryable
        assert "answer was lost" in raised.value.message

    assert email.calls == 1
    record = await stored(sessions, make_invitation())
    assert record.status == MessageStatus.in_doubt and record.attempts == 1
    assert record.sent_at is None and "attempt 1" in (record.reason or "")


async def test_an_attempt_interrupted_while_the_provider_had_it_is_in_doubt_not_repeated(sessions):
    email = InterruptedSender(Channel.email)
    messaging = activities(sessions, email=email)
    with pytest.raises(asyncio.CancelledError):  # the cancellation of a stopping worker
        await send(messaging, make_invitation())
    assert (await stored(sessions, make_invitation())).status == MessageStatus.sending

    with pytest.raises(ApplicationError) as raised:
        await send(messaging, make_invitation())

    assert raised.value.type == IN_DOUBT
    assert "attempt 1 was interrupted" in raised.value.message
    assert email.calls == 1


async def test_an_interrupted_attempt_is_repeated_where_repeating_replaces_the_message(sessions):
    webchat = SafeToRepeatSender(Channel.webchat)
    messaging = activities(sessions, webchat=webchat)
    message = make_invitation(Channel.webchat)
    async with sessions() as session:  # an attempt that stopped mid-send
        from communications.message_store import get_or_create_outbound

        record = await get_or_create_outbound(session=session, message=message)
        record.status, record.attempts = MessageStatus.sending.value, 1
        session.add(record)
        await session.commit()

    result = await send(messaging, message)

    assert result.status == MessageStatus.sent and webchat.calls == 1


async def test_a_status_report_that_arrives_while_waiting_settles_the_doubt_as_sent(sessions):
    whatsapp = StatusReportingSender(Channel.whatsapp)
    whatsapp.in_doubt_failures = 1
    messaging = activities(sessions, whatsapp=whatsapp)
    message = make_invitation(Channel.whatsapp, wait_for_provider_status=timedelta(seconds=20))

    async def report_when_in_doubt() -> None:
        await whatsapp.in_doubt_raised.wait()  # the webhook may even beat the activity's own record
        async with sessions() as session:  # the webhook, matched by biz_opaque_callback_data
            await apply_status_update(
                session=session, provider_message_id="wamid.LATE", status=MessageStatus.delivered,
                at=utcnow(), callback_message_id=message.message_id,
            )

    result, _ = await asyncio.gather(send(messaging, message), report_when_in_doubt())

    assert result.status == MessageStatus.delivered and "reported it delivered" in (result.note or "")
    again = await send(messaging, message)  # a retry answers from the store
    assert again.status == MessageStatus.delivered
    assert whatsapp.calls == 1
    record = await stored(sessions, message)
    assert record.provider_message_id == "wamid.LATE" and record.sent_at is not None


async def test_no_status_report_within_the_wait_leaves_the_message_in_doubt(sessions):
    whatsapp = StatusReportingSender(Channel.whatsapp)
    whatsapp.in_doubt_failures = 1
    messaging = activities(sessions, whatsapp=whatsapp)
    message = make_invitation(Channel.whatsapp, wait_for_provider_status=timedelta(seconds=1))

    with pytest.raises(ApplicationError) as raised:
        await send(messaging, message)

    assert raised.value.type == IN_DOUBT and "no status report came within 1 s" in raised.value.message
    assert whatsapp.calls == 1


async def test_a_failed_report_while_waiting_fails_the_message_for_the_next_channel(sessions):
    whatsapp = StatusReportingSender(Channel.whatsapp)
    whatsapp.in_doubt_failures = 1
    messaging = activities(sessions, whatsapp=whatsapp)
    message = make_invitation(Channel.whatsapp, wait_for_provider_status=timedelta(seconds=0))
    with pytest.raises(ApplicationError):
        await send(messaging, message)
    async with sessions() as session:
        await apply_status_update(
            session=session, provider_message_id="wamid.X", status=MessageStatus.failed, at=utcnow(),
            reason="Message undeliverable (code 131026)", callback_message_id=message.message_id,
        )

    with pytest.raises(ApplicationError) as raised:
        await send(messaging, message.model_copy(update={"wait_for_provider_status": timedelta(seconds=5)}))

    assert raised.value.type == "DeliveryRejected" and "131026" in raised.value.message
    assert whatsapp.calls == 1


async def test_staff_sending_again_sends_once_per_request(sessions):
    email = RecordingSender(Channel.email)
    email.in_doubt_failures = 1
    messaging = activities(sessions, email=email)
    with pytest.raises(ApplicationError):
        await send(messaging, make_invitation())

    result = await send(messaging, make_invitation(send_again_request="staff-1"))
    again = await send(messaging, make_invitation(send_again_request="staff-1"))

    assert result.status == MessageStatus.sent and again.sent_at == result.sent_at
    assert email.calls == 2
    record = await stored(sessions, make_invitation())
    assert record.attempts == 2
    async with sessions() as session:
        history = await status_history(session=session, message_id=record.id)
    assert [event.event_id for event in history if event.event_id] == ["send-again:staff-1"]


async def test_a_send_again_request_is_used_once_even_if_that_attempt_is_in_doubt_too(sessions):
    email = RecordingSender(Channel.email)
    email.in_doubt_failures = 2
    messaging = activities(sessions, email=email)
    with pytest.raises(ApplicationError):
        await send(messaging, make_invitation())
    for _ in range(2):
        with pytest.raises(ApplicationError) as raised:
            await send(messaging, make_invitation(send_again_request="staff-1"))
        assert raised.value.type == IN_DOUBT
    assert email.calls == 2


async def test_a_database_error_while_recording_the_hand_over_is_retried_not_resent(sessions, monkeypatch):
    email = RecordingSender(Channel.email)
    messaging = activities(sessions, email=email)
    import activities.messaging as module

    real = module.record_hand_over
    failures = iter([True, True])

    async def busy_then_fine(**arguments):  # type: ignore[no-untyped-def]
        if next(failures, False):
            raise OperationalError("UPDATE message", {}, Exception("database is locked"))
        return await real(**arguments)

    monkeypatch.setattr(module, "record_hand_over", busy_then_fine)
    monkeypatch.setattr(module, "RECORD_RETRY_FIRST", timedelta(milliseconds=10))

    result = await send(messaging, make_invitation())

    assert result.status == MessageStatus.sent and email.calls == 1
    assert (await stored(sessions, make_invitation())).sent_at is not None


async def test_an_unexpected_error_fails_the_attempt_for_good_with_its_reason(sessions):
    email = RecordingSender(Channel.email)
    messaging = activities(sessions, email=email)
    broken = make_invitation()
    broken = broken.model_copy(update={"context": {**broken.context, "departure": "not a date"}})

    with pytest.raises(ApplicationError) as raised:
        await send(messaging, broken)

    assert raised.value.type == UNEXPECTED and raised.value.non_retryable
    assert "ValueError" in raised.value.message and email.calls == 0
