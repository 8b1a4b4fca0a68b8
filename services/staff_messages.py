"""A message staff send through the journey: checked, then handed to it.

One function for `POST /communications/send` and the staff panel's send and
chat forms (`send_staff_message`): what staff may give is checked by the rule
of `communications.staff_message`, a free text is stored apart
(`communications.staff_texts`), and the journey sends the message as a step of
its own (`GuestJourneyWorkflow.send_message`: a `manual:` step, delivered with
retries, in the timeline). A request id sent twice sends once.

What is wrong raises `StaffMessageRefused`, an `InvalidRequest` (422) whose
detail names the field (`context.body: at most 4000 characters ...`); its
`field` and `problem` let a page say it in its own words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from communications.staff_message import (
    Problem,
    StaffMessageError,
    check_in_reply_to,
    staff_context,
)
from communications.staff_texts import body_stored_apart
from communications.templates import TemplateCatalogue
from guest_journey.reservations import Channel
from services.errors import InvalidRequest
from services.journey_service import update_journey
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import ManualMessage


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
