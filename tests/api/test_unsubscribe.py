"""A guest who unsubscribes gets no more offers; messages about the stay go on."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from tests.api.test_reservations import reservation_body
from tests.workflows.journeys import finish, now
from workflows.journey import GuestJourneyWorkflow


async def test_one_click_unsubscribe_stops_offers_but_not_the_journey(env, worker, email, api):
    arrival = await now(env) + timedelta(days=2)
    body = reservation_body(arrival, marketing_consent=True)
    async with worker():
        await api.put("/reservations/R-UNSUB-1", json=body)
        await email.wait_for(2)  # the invitation and the upgrade offer, both due at once
        offer = next(o for o in email.sent if o.rendered.template == "upsell_offer")
        invitation = next(o for o in email.sent if o.rendered.template == "checkin_invitation")
        path = urlsplit(offer.unsubscribe_url).path
        page = await api.get(path)
        done = await api.post(path, data={"List-Unsubscribe": "One-Click"})
        result = await finish(env, env.client.get_workflow_handle_for(GuestJourneyWorkflow.run, "journey-R-UNSUB-1"))

    assert invitation.unsubscribe_url is None  # transactional: no unsubscribe header
    assert page.status_code == 200 and "<form" in page.text  # opening the link alone changes nothing
    assert done.status_code == 200
    late_checkout = next(step for step in result.steps if step.key == "upsell:late_checkout")
    assert late_checkout.status.value == "skipped"
    assert late_checkout.reason == "the guest unsubscribed from offers"
    assert "checkin_reminder" in email.templates() and "guest_post_stay_feedback" in email.templates()
    assert email.templates().count("upsell_offer") == 1


async def test_a_forged_unsubscribe_link_is_refused(api):
    assert (await api.post("/guest/not-a-token/unsubscribe")).status_code == 403
