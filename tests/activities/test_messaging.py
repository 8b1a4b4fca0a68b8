"""The messaging activity: rendered, delivered and recorded once per key."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.messaging import CHANNEL_UNAVAILABLE, TEMPLATE_FAILED, MessagingActivities
from communications.message_store import list_for_reservation
from communications.staff_texts import BODY_ID, StaffText, store_staff_text
from communications.templates import TemplateCatalogue
from guest_journey.guest_links import GuestLinks
from guest_journey.messages import SendMessageInput
from guest_journey.reservations import Channel, Guest
from tests.factories import make_invitation
from tests.recording_sender import RecordingSender


def invitation(template: str = "checkin_invitation", channel: Channel = Channel.email) -> SendMessageInput:
    """The check-in invitation, in Spanish, to a guest whose name holds markup."""
    guest = Guest(name="Ana <b>Souza</b>", email="ana@example.com", language="es")
    return make_invitation(channel, template=template, guest=guest)


@pytest.fixture
def messaging(sessions, email: RecordingSender) -> MessagingActivities:
    return MessagingActivities(
        sessions=sessions,
        templates=TemplateCatalogue.load(),
        channels={Channel.email: email},
        links=GuestLinks("https://stay.example.com", "secret"),
        secret_key="secret",
    )


async def test_a_repeated_send_is_answered_from_the_store_not_sent_again(messaging, email, sessions):
    first = await ActivityEnvironment().run(messaging.send_message, invitation())
    again = await ActivityEnvironment().run(messaging.send_message, invitation())
    assert email.calls == 1
    assert first.message_id == again.message_id
    assert again.sent_at == first.sent_at
    outgoing = email.sent[0]
    assert outgoing.recipient == "ana@example.com"
    assert outgoing.rendered.language == "es"
    assert "https://stay.example.com/guest/" in outgoing.rendered.text
    async with sessions() as session:
        [record] = await list_for_reservation(session=session, reservation_id="R1")
    assert record.status == "sent" and record.body_text == outgoing.rendered.text


async def test_a_transient_failure_is_recorded_and_retried_by_raising(messaging, email, sessions):
    email.transient_failures = 1
    with pytest.raises(Exception, match="server busy"):
        await ActivityEnvironment().run(messaging.send_message, invitation())
    result = await ActivityEnvironment().run(messaging.send_message, invitation())
    assert result.status == "sent"
    assert email.calls == 2 and len(email.sent) == 1


async def test_a_channel_that_is_not_configured_fails_for_good(messaging):
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(messaging.send_message, invitation(channel=Channel.whatsapp))
    assert raised.value.type == CHANNEL_UNAVAILABLE and raised.value.non_retryable


async def test_an_unknown_template_fails_the_message_with_its_name(messaging, sessions):
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(messaging.send_message, invitation(template="no_such_template"))
    assert raised.value.type == TEMPLATE_FAILED and "no_such_template" in raised.value.message
    async with sessions() as session:
        [record] = await list_for_reservation(session=session, reservation_id="R1")
    assert record.status == "failed" and "no_such_template" in record.reason


def staff_text_message(body_id: str) -> SendMessageInput:
    """A free text staff sent, as the journey asks for it: the text named by its id."""
    message = invitation(template="free_text")
    return message.model_copy(update={"step_key": "manual:m1", "context": {**message.context, BODY_ID: body_id}})


async def test_a_staff_text_is_read_from_the_database_when_the_message_is_rendered(messaging, email, sessions):
    async with sessions() as session:
        body_id = await store_staff_text(session=session, reservation_id="R1", request_id="m1",
                                         body="Your room is ready from noon.")
    result = await ActivityEnvironment().run(messaging.send_message, staff_text_message(body_id))
    assert result.status == "sent"
    assert "Your room is ready from noon." in email.sent[0].rendered.text


@pytest.mark.parametrize("owner", ["R1", "R2"], ids=["erased", "another-reservation"])
async def test_a_staff_text_that_is_gone_or_not_the_reservations_fails_the_message(messaging, email, sessions, owner):
    async with sessions() as session:
        body_id = await store_staff_text(session=session, reservation_id=owner, request_id="m1", body="Hello")
        if owner == "R1":  # the guest's data was erased before the message went out
            await session.delete(await session.get(StaffText, body_id))
            await session.commit()
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(messaging.send_message, staff_text_message(body_id))
    assert raised.value.type == TEMPLATE_FAILED and raised.value.non_retryable
    assert email.calls == 0
    async with sessions() as session:
        [record] = await list_for_reservation(session=session, reservation_id="R1")
    assert record.status == "failed" and body_id in (record.reason or "")
