"""A guest's message, however it comes in: stored once, told to its journey, counted once.

Every way a guest's message reaches us goes through `receive_inbound`:
`POST /communications/messages/inbound`, the WhatsApp webhook, the guest's web
chat, the reply staff record from the panel, and a detractor's feedback
(`services.guest_feedback`). The message is stored and matched to its
reservation (`communications.inbound.store_inbound`); a reply to one of our
messages is counted in the guest's reply time metric
(`guest_journey.telemetry.guest_replied`; staff's response time is
`communications.response_times`); a matched message is signalled to its
journey (`notify_inbound`: it opens WhatsApp's 24-hour window). A message its
channel delivers again (`duplicate`) is neither counted nor signalled again.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from communications.inbound import InboundResult, NoMatchInScope, UnknownReservation, store_inbound
from guest_journey.reservations import Channel
from guest_journey.telemetry import guest_replied
from services.errors import NotFound, journey_not_found
from services.journey_service import notify_inbound


async def receive_inbound(
    *,
    session: AsyncSession,
    client: Client,
    channel: Channel,
    sender: str,
    body: str,
    received_at: datetime,
    in_reply_to: str | None = None,
    reservation_id: str | None = None,
    provider_message_id: str | None = None,
    hotels: Collection[str] | None = None,
    template: str | None = None,
) -> InboundResult:
    """Store a guest's message (matched as `store_inbound` matches it), count its
    response time when it answers one of ours, and tell its journey. `NotFound`
    when `reservation_id` names no journey (of `hotels`, when given), or when a
    caller limited to `hotels` records a message that matches none of theirs."""
    try:
        result = await store_inbound(
            session=session, channel=channel, sender=sender, body=body, received_at=received_at,
            in_reply_to=in_reply_to, reservation_id=reservation_id, provider_message_id=provider_message_id,
            hotels=hotels, template=template,
        )
    except UnknownReservation as error:
        raise journey_not_found(error.reservation_id) from error
    except NoMatchInScope as error:
        raise NotFound(str(error)) from error
    if result.duplicate:
        return result
    if result.response_time_minutes is not None:
        guest_replied(result.message.channel, result.response_time_minutes)
    if result.matched:
        await notify_inbound(client=client, message=result.message)
    return result
