"""A guest's feedback (satisfaction, NPS, a comment), sent to the journey once,
and the follow-up a detractor's answer opens for staff.

A detractor (an NPS score of `guest_journey.kpis.DETRACTOR_MAX` or less) gets a
follow-up: their answer becomes an inbound message of the reservation's web
chat (template `feedback_follow_up`), received as every guest message is
(`services.inbound_messages`), which the operations view lists and staff answer
from there. One follow-up per reservation, opened only by the answer the
journey takes (not by a repeat of it).
"""

from __future__ import annotations

import logging

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from communications.message_store import MessageRecord
from guest_journey.database import utcnow
from guest_journey.kpis import DETRACTOR_MAX
from guest_journey.reservations import Channel
from services.inbound_messages import receive_inbound
from services.journey_service import update_journey
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import FeedbackSubmission

logger = logging.getLogger(__name__)

FOLLOW_UP_TEMPLATE = "feedback_follow_up"


def is_detractor(score: int) -> bool:
    return score <= DETRACTOR_MAX


async def record_feedback(
    *,
    session: AsyncSession,
    client: Client,
    reservation_id: str,
    request_id: str,
    score: int,
    satisfaction: int,
    comment: str | None,
) -> bool:
    """Send the guest's feedback to the journey (once per `request_id`) and, for a
    detractor's answer the journey takes, open the follow-up; whether the journey
    took it (False: it had the feedback already). 404 unknown, 409 finished."""
    ack = await update_journey(
        client=client, session=session, reservation_id=reservation_id, update=GuestJourneyWorkflow.submit_feedback,
        argument=FeedbackSubmission(request_id=request_id, score=score, satisfaction=satisfaction,
                                    comment=comment or None),
    )
    if ack.changed and is_detractor(score):
        await _open_follow_up(session=session, client=client, reservation_id=reservation_id, score=score,
                             comment=comment)
    return ack.changed


async def _open_follow_up(
    *, session: AsyncSession, client: Client, reservation_id: str, score: int, comment: str | None
) -> MessageRecord | None:
    """A detractor's answer, as a guest message staff see and reply to; the message,
    or None when the reservation has its follow-up already."""
    body = f"NPS {score}/10" + (f"\n{comment}" if comment else "")
    result = await receive_inbound(
        session=session, client=client, channel=Channel.webchat, sender=f"webchat:{reservation_id}",
        body=body, received_at=utcnow(), reservation_id=reservation_id,
        provider_message_id=f"feedback:{reservation_id}", template=FOLLOW_UP_TEMPLATE,
    )
    if result.duplicate:
        return None
    logger.info("detractor follow-up opened", extra={"reservation_id": reservation_id,
                                                     "message_id": result.message.id})
    return result.message
