"""WhatsApp in a journey: failover from e-mail, and retries through rate limits."""

from __future__ import annotations

from datetime import timedelta

from communications.channels.whatsapp import WhatsAppSender
from guest_journey.journeys import StepStatus
from guest_journey.reservations import Channel
from tests.fake_whatsapp import FakeWhatsAppApi
from tests.workflows.journeys import booking, finish, now, put, quiet_policy
from tests.workflows.test_journey import FAST_RETRY


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
