"""The acts of `guest-journey demo`'s simulated guests, through the service's own entry
points: the activity `DemoGuestWorkflow` runs at each act's moment.

Each act calls the function its HTTP route calls: the reservation system's PUT
(`journey_service.put_reservation`), the guest's check-in and offer pages (the
journey's `complete_checkin` and `answer_offer` updates, as `api/guest/` sends
them), the guest's message (`inbound_messages.receive_inbound`, as the WhatsApp
webhook and the inbound e-mail do), the inbox's reply
(`staff_messages.reply_in_conversation`) and the feedback page
(`guest_feedback.record_feedback`). The worker's `guest_journey.clock.SimulatedClock`
makes the moments they stamp the simulated ones.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from communications.templates import TemplateCatalogue
from guest_journey.database import SessionFactory, utcnow
from guest_journey.policy import JourneyPolicy
from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from services.guest_feedback import record_feedback
from services.inbound_messages import receive_inbound
from services.journey_service import put_reservation, update_journey
from services.staff_messages import FREE_TEXT, reply_in_conversation
from workflows.demo_guest import DEMO_GUEST_ACT, GuestActInput, GuestActKind
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import CheckinSubmission, OfferAnswer

GUEST_WORDS = {
    Channel.whatsapp: "Oi! Vocês têm estacionamento no hotel?",
    Channel.email: "Hello, could we have a cot in the room for our baby? Thank you.",
}
STAFF_WORDS = {
    Channel.whatsapp: "Olá! Temos, sim: estacionamento coberto, reserve na recepção.",
    Channel.email: "Dear guest, of course: the cot will be ready in your room. Kind regards.",
}
FEEDBACK_WORDS = {True: "Everything was great.", False: "The room was noisy at night."}


class DemoGuestActs:
    def __init__(
        self, *, client: Client, settings: Settings, sessions: SessionFactory, policy: JourneyPolicy,
        catalogue: TemplateCatalogue,
    ) -> None:
        self._client = client
        self._settings = settings
        self._sessions = sessions
        self._policy = policy
        self._catalogue = catalogue

    @activity.defn(name=DEMO_GUEST_ACT)
    async def act(self, request: GuestActInput) -> None:
        act, reservation = request.act, request.reservation
        rid = reservation.reservation_id
        request_id = f"demo-{act.kind.value}-{rid}-{request.number}"
        async with self._sessions() as session:
            if act.kind is GuestActKind.book:
                await put_reservation(client=self._client, settings=self._settings, session=session,
                                      policy=self._policy, reservation=reservation, request_id=request_id)
            elif act.kind is GuestActKind.check_in:
                await update_journey(
                    client=self._client, session=session, reservation_id=rid,
                    update=GuestJourneyWorkflow.complete_checkin,
                    argument=CheckinSubmission(request_id=request_id, details={"estimated_arrival": "15:00"}),
                )
            elif act.kind is GuestActKind.answer_offer:
                assert act.offer is not None and act.accepted is not None
                await update_journey(
                    client=self._client, session=session, reservation_id=rid,
                    update=GuestJourneyWorkflow.answer_offer,
                    argument=OfferAnswer(request_id=request_id, offer=act.offer, accepted=act.accepted),
                )
            elif act.kind is GuestActKind.write:
                assert act.channel is not None
                guest = reservation.guest
                sender = guest.phone if act.channel is Channel.whatsapp else guest.email
                assert sender is not None
                await receive_inbound(
                    session=session, client=self._client, channel=act.channel, sender=sender,
                    body=GUEST_WORDS[act.channel], received_at=act.at, reservation_id=rid,
                    provider_message_id=request_id,
                )
            elif act.kind is GuestActKind.staff_reply:
                assert act.channel is not None
                await reply_in_conversation(
                    session=session, client=self._client, catalogue=self._catalogue, reservation_id=rid,
                    channel=act.channel, request_id=request_id, template=FREE_TEXT, now=utcnow(),
                    context={"body": STAFF_WORDS[act.channel]},
                )
            elif act.kind is GuestActKind.give_feedback:
                assert act.score is not None
                await record_feedback(
                    session=session, client=self._client, reservation_id=rid, request_id=request_id,
                    score=act.score, satisfaction=act.satisfaction if act.satisfaction is not None else act.score,
                    comment=FEEDBACK_WORDS[act.score >= 7],
                )
