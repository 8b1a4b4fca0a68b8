"""A message staff send through the journey: checked, then handed to it.

One function for `POST /communications/send` and the staff panel's send and
chat forms (`send_staff_message`): what staff may give is checked by the rule
of `communications.staff_message`, a free text is stored apart
(`communications.staff_texts`), and the journey sends the message as a step of
its own (`GuestJourneyWorkflow.send_message`: a `manual:` step, delivered with
retries, in the timeline). A request id sent twice sends once.

A reply in a conversation (`reply_in_conversation`, the inbox) goes on the
conversation's channel. On WhatsApp, free text goes only within 24 hours of
the guest's last message there (`whatsapp_window_open`, the rule the journey
applies when it sends); outside that window a free text is refused, naming
why, and a template of the catalogue goes as the approved template.

What is wrong raises `StaffMessageRefused`, an `InvalidRequest` (422) whose
detail names the field (`context.body: at most 4000 characters ...`); its
`field` and `problem` let a page say it in its own words.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from communications.message_store import MessageRecord
from communications.staff_message import (
    Problem,
    StaffMessageError,
    check_in_reply_to,
    staff_context,
)
from communications.staff_texts import body_stored_apart
from communications.templates import TemplateCatalogue
from guest_journey.messages import MessageDirection
from guest_journey.reservations import Channel
from services.errors import InvalidRequest
from services.journey_service import update_journey
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import ManualMessage
from workflows.step_messages import WHATSAPP_WINDOW

FREE_TEXT = "free_text"


class StaffMessageRefused(InvalidRequest):
    """What staff asked to send is refused. `field` is `template`, `channel`,
    `in_reply_to` or `context.<key>`; `problem` says what is wrong with it and
    `reason` says it in words (the detail is `<field>: <reason>`)."""

    def __init__(self, error: StaffMessageError) -> None:
        super().__init__(str(error))
        self.field = error.field
        self.problem: Problem = error.problem
        self.reason = error.detail

    @property
    def key(self) -> str:
        """The context key named, or the field."""
        return self.field.removeprefix("context.")


async def send_staff_message(
    *,
    session: AsyncSession,
    client: Client,
    catalogue: TemplateCatalogue,
    reservation_id: str,
    request_id: str,
    template: str,
    channel: Channel | None = None,
    context: Mapping[str, Any] | None = None,
    in_reply_to: str | None = None,
) -> str:
    """Check what staff ask to send and have the journey of `reservation_id` (its
    journey id) send it; the message's id. `StaffMessageRefused` names the first
    thing wrong; the journey's own answers are those of `update_journey` (404
    unknown, 409 finished)."""
    try:
        checked = staff_context(catalogue=catalogue, template=template, channel=channel, context=context or {})
        replied_to = check_in_reply_to(in_reply_to)
    except StaffMessageError as error:
        raise StaffMessageRefused(error) from error
    stored = await body_stored_apart(  # the journey keeps the text's id, not the text
        session=session, reservation_id=reservation_id, request_id=request_id, context=checked,
    )
    ack = await update_journey(
        client=client, session=session, reservation_id=reservation_id, update=GuestJourneyWorkflow.send_message,
        argument=ManualMessage(request_id=request_id, template=template, channel=channel, in_reply_to=replied_to,
                               context=stored),
    )
    assert ack.message_id is not None
    return ack.message_id


def whatsapp_window_open(last_guest_message_at: datetime | None, now: datetime) -> bool:
    """WhatsApp takes free text only within 24 h of the guest's last message on it."""
    return last_guest_message_at is not None and now - last_guest_message_at < WHATSAPP_WINDOW


async def last_guest_message_at(*, session: AsyncSession, reservation_id: str, channel: Channel) -> datetime | None:
    """When the guest last wrote on `channel` about the reservation."""
    found = (await session.exec(
        select(func.max(MessageRecord.created_at)).where(
            col(MessageRecord.reservation_id) == reservation_id, col(MessageRecord.channel) == channel.value,
            col(MessageRecord.direction) == MessageDirection.inbound.value)
    )).one()
    return found if found is None or found.tzinfo is not None else found.replace(tzinfo=UTC)


async def reply_in_conversation(
    *,
    session: AsyncSession,
    client: Client,
    catalogue: TemplateCatalogue,
    reservation_id: str,
    channel: Channel,
    request_id: str,
    template: str,
    now: datetime,
    context: Mapping[str, Any] | None = None,
    in_reply_to: str | None = None,
) -> str:
    """Reply in a conversation, on its channel (module rules); the message's id. A free
    text on WhatsApp outside the 24-hour window is refused (`window_closed`)."""
    if channel is Channel.whatsapp and template == FREE_TEXT:
        last = await last_guest_message_at(session=session, reservation_id=reservation_id, channel=channel)
        if not whatsapp_window_open(last, now):
            raise StaffMessageRefused(StaffMessageError(
                "template", Problem.window_closed,
                "WhatsApp takes free text only within 24 hours of the guest's last message; "
                "send one of the catalogue's templates (they go as approved templates)"))
    return await send_staff_message(
        session=session, client=client, catalogue=catalogue, reservation_id=reservation_id, request_id=request_id,
        template=template, channel=channel, context=context, in_reply_to=in_reply_to,
    )
