"""The message a step sends: its template, the activity's input and the values
the template is rendered with, and whether WhatsApp's window is open."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from guest_journey.journeys import Step, StepKind
    from guest_journey.messages import SendMessageInput, message_id_for
    from guest_journey.reservations import Channel
    from workflows.journey_inputs import JourneyState, ManualMessage

TEMPLATE_FOR_KIND = {
    StepKind.checkin_invitation: "checkin_invitation",
    StepKind.checkin_reminder: "checkin_reminder",
    StepKind.upsell: "upsell_offer",
    StepKind.upsell_follow_up: "upsell_follow_up",
    StepKind.guest_post_stay_feedback: "guest_post_stay_feedback",
    StepKind.feedback_reminder: "feedback_reminder",
}
MARKETING_KINDS = frozenset({StepKind.upsell, StepKind.upsell_follow_up})
# A staff message in an offer template is marketing too: List-Unsubscribe, and not to the unsubscribed.
# (Only the activity input changes, no command: recorded histories replay without a patch.)
OFFER_TEMPLATES = frozenset(TEMPLATE_FOR_KIND[kind] for kind in MARKETING_KINDS)
WHATSAPP_WINDOW = timedelta(hours=24)


def message_for(
    s: JourneyState, step: Step, template: str, channel: Channel, key: str, *, window_open: bool,
    note: str | None = None,
) -> SendMessageInput:
    """The `send_message` input for one attempt of a step on one channel, keyed by `key`."""
    manual = s.manual_messages.get(step.key)
    return SendMessageInput(
        message_id=message_id_for(key),
        message_key=key,
        reservation_id=s.reservation.reservation_id,
        hotel_id=s.reservation.hotel_id,
        step_key=step.key,
        template=template,
        channel=channel,
        guest=s.reservation.guest,
        marketing=step.kind in MARKETING_KINDS or template in OFFER_TEMPLATES,
        in_reply_to=manual.in_reply_to if manual else None,
        window_open=window_open,
        context=template_context(s, step, manual),
        note=note,
        wait_for_provider_status=s.policy.delivery.wait_for_provider_status,
    )


def in_whatsapp_window(s: JourneyState) -> bool:
    """WhatsApp allows free text for 24 h after the guest last wrote on it."""
    last = s.last_inbound_at.get(Channel.whatsapp.value)
    return last is not None and workflow.now() - last < WHATSAPP_WINDOW


def template_context(s: JourneyState, step: Step, manual: ManualMessage | None) -> dict[str, Any]:
    """The template's values: staff's context, then the journey's own facts,
    which staff cannot override (the dates, the room, the hotel)."""
    context: dict[str, Any] = {"journey_stage": s.stage.value}
    if manual:
        context.update(manual.context)
    context |= {
        "step_key": step.key,
        "arrival": s.reservation.arrival.isoformat(),
        "departure": s.reservation.departure.isoformat(),
        "room_type": s.reservation.room_type,
        "hotel_timezone": s.policy.hotel_timezone,
        "hotel_name": s.policy.hotel_name,
    }
    offer_name = step.offer or (manual.context.get("upsell_offer") if manual else None)
    offer = s.policy.offer(offer_name) if isinstance(offer_name, str) else None
    if offer is not None:
        context.update(upsell_offer=offer.offer, offer_price=offer.price, offer_currency=offer.currency)
    return context
