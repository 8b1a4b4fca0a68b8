"""WhatsApp in a journey: failover from e-mail, retries through rate limits, and
free text that WhatsApp reports failed later sent again as a template."""

from __future__ import annotations

from datetime import timedelta

from communications.channels.whatsapp import WhatsAppSender
from communications.message_store import list_for_reservation
from guest_journey.journeys import StepStatus
from guest_journey.messages import message_id_for, message_key, template_resend_key
from guest_journey.reservations import Channel
from tests.fake_whatsapp import FakeWhatsAppApi
from tests.workflows.journeys import booking, finish, now, put, quiet_policy
from tests.workflows.test_journey import FAST_RETRY
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import InboundNotice, MessageFailedLater


async def test_email_rejected_falls_over_to_a_whatsapp_template(env, worker, email, settings):
    email.permanent_failure = "550 5.1.1 mailbox unknown"
    reservation = booking(
        await now(env), arrive_in=timedelta(days=2), nights=1, marketing_consent=False,
        phone="+5511999990000", preferred_channels=[Channel.email, Channel.whatsapp],
    )
    async with FakeWhatsAppApi(access_token="token") as cloud_api:
        whatsapp = WhatsAppSender("1234567890", "token", cloud_api.base_url)
        async with worker({Channel.email: email, Channel.whatsapp: whatsapp}):
            handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy(delivery=FAST_RETRY))
            result = await finish(env, handle)
        await whatsapp.aclose()

    invitation = next(step for step in result.steps if step.key == "checkin_invitation")
    assert invitation.status is StepStatus.done and invitation.channel == "whatsapp"
    request = cloud_api.requests[0]
    assert request.json["to"] == "5511999990000"
    assert request.json["type"] == "template"  # the guest has not written: no 24-hour window
    assert request.json["template"]["name"] == "checkin_invitation"
    assert request.json["template"]["language"]["code"] == "pt_BR"


async def test_rate_limited_whatsapp_is_retried_then_delivered_once(env, worker, settings):
    reservation = booking(
        await now(env), arrive_in=timedelta(days=2), nights=1, marketing_consent=False,
        email=None, phone="+5511999990000",
    )
    async with FakeWhatsAppApi(access_token="token") as cloud_api:
        cloud_api.fail_next(status=429, code=130429, times=2)
        whatsapp = WhatsAppSender("1234567890", "token", cloud_api.base_url)
        async with worker({Channel.whatsapp: whatsapp}):
            handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy(delivery=FAST_RETRY))
            result = await finish(env, handle)
        await whatsapp.aclose()

    invitation = next(step for step in result.steps if step.key == "checkin_invitation")
    assert invitation.status is StepStatus.done and invitation.channel == "whatsapp"
    invitations = [r for r in cloud_api.requests if r.json["template"]["name"] == "checkin_invitation"]
    assert len(invitations) == 3  # two rate-limited attempts, then the one delivered
    assert len(cloud_api.sent_ids) == len(cloud_api.requests) - 2  # every other message once


async def test_free_text_reported_failed_later_as_the_window_closed_is_sent_again_once_as_template(
    env, worker, settings, sessions
):
    t0 = await now(env)
    reservation = booking(  # the invitation is due in an hour; the guest wrote just now
        t0, arrive_in=timedelta(hours=73), nights=1, marketing_consent=False, email=None, phone="+5511999990000",
    )
    rid = reservation.reservation_id
    first_id = message_id_for(message_key(rid, "checkin_invitation", Channel.whatsapp))
    resent_id = message_id_for(template_resend_key(message_key(rid, "checkin_invitation", Channel.whatsapp)))

    def failure(message_id: str, code: int = 131047) -> MessageFailedLater:
        return MessageFailedLater(
            message_id=message_id, step_key="checkin_invitation", channel=Channel.whatsapp, error_code=code,
            reason=f"Re-engagement message (code {code})", failed_at=t0 + timedelta(hours=1),
        )

    async with FakeWhatsAppApi(access_token="token") as cloud_api:
        whatsapp = WhatsAppSender("1234567890", "token", cloud_api.base_url)
        async with worker({Channel.whatsapp: whatsapp}):
            handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy(delivery=FAST_RETRY))
            await handle.signal(GuestJourneyWorkflow.record_inbound,
                                InboundNotice(message_id="in-1", channel=Channel.whatsapp, received_at=t0))
            await env.sleep(timedelta(hours=1, minutes=5))
            await cloud_api.wait_for(1)
            await handle.signal(GuestJourneyWorkflow.message_failed_later, failure(first_id, code=131026))
            for _ in range(2):  # Meta redelivers the status webhook
                await handle.signal(GuestJourneyWorkflow.message_failed_later, failure(first_id))
            await cloud_api.wait_for(2)
            await handle.signal(GuestJourneyWorkflow.message_failed_later, failure(resent_id))
            result = await finish(env, handle)
        await whatsapp.aclose()

    invitations = [
        r.json for r in cloud_api.requests
        if r.json["type"] == "text" or r.json["template"]["name"] == "checkin_invitation"
    ]
    assert [r["type"] for r in invitations] == ["text", "template"]  # the free text, then the template once
    assert invitations[1]["template"]["language"]["code"] == "pt_BR"
    invitation = next(step for step in result.steps if step.key == "checkin_invitation")
    assert invitation.status is StepStatus.done and invitation.message_id == resent_id
    assert invitation.reason == (
        "whatsapp: the free text was reported failed after it was sent (Re-engagement message (code 131047)); "
        "sent again as template 'checkin_invitation'"
    )
    async with sessions() as session:
        messages = await list_for_reservation(session=session, reservation_id=rid)
    sent = [(m.id, m.template, m.status) for m in messages if m.step_key == "checkin_invitation"]
    assert sent == [(first_id, "checkin_invitation", "sent"), (resent_id, "checkin_invitation", "sent")]
    assert messages[1].reason == (
        "sent again as template 'checkin_invitation': the free text was reported failed after it was sent "
        f"(Re-engagement message (code 131047)); the failed message is {first_id}"
    )
