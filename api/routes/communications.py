"""The runbook's communications routes: templates, sending through the journey,
recording a guest's reply, and the delivery summary."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import SessionDep, TemplatesDep, TemporalClientDep, require_role
from api.error_responses import ROLE_ERRORS, errors
from api.errors import InvalidRequest
from api.journey_service import update_journey
from communications.delivery_summary import DeliverySummary, delivery_summary
from communications.templates import TemplateInfo
from guest_journey.messages import MessageStatus
from guest_journey.reservations import RESERVATION_ID, Channel, Moment
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import ManualMessage

router = APIRouter(prefix="/communications", tags=["communications"],
                   dependencies=[Depends(require_role("ops"))], responses=ROLE_ERRORS)


OFFER_TEMPLATES = frozenset({"upsell_offer", "upsell_follow_up"})


class SendContext(BaseModel):
    """Values for the template; `journey_stage` and `upsell_offer` as the runbook names them."""

    model_config = ConfigDict(extra="allow")

    journey_stage: str | None = None
    upsell_offer: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    body: str | None = Field(default=None, max_length=4000, description="the text of a free_text message")


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reservation_id: str = Field(pattern=RESERVATION_ID)
    template: str = Field(min_length=1, max_length=64)
    channel: Channel | None = None
    in_reply_to: str | None = Field(default=None, max_length=64)
    context: SendContext = Field(default_factory=SendContext)


class SendAnswer(BaseModel):
    message_id: str
    status: MessageStatus


@router.get("/templates", response_model=list[TemplateInfo])
async def list_templates(templates: TemplatesDep) -> list[TemplateInfo]:
    return templates.describe()


@router.post(
    "/send", response_model=SendAnswer, status_code=status.HTTP_202_ACCEPTED,
    responses=errors(404, 409, 413, 422, 503),
)
async def send_message(
    request: SendRequest, client: TemporalClientDep, session: SessionDep, templates: TemplatesDep
) -> SendAnswer:
    """Send (or resend) a message through the journey: it becomes a step of its
    own (`manual:<id>`) in the timeline and is delivered with retries."""
    _check_template(templates, request)
    context: dict[str, Any] = request.context.model_dump(exclude_none=True)
    ack = await update_journey(
        client=client, session=session, reservation_id=request.reservation_id,
        update=GuestJourneyWorkflow.send_message,
        argument=ManualMessage(
            request_id=str(uuid.uuid4()), template=request.template, channel=request.channel,
            in_reply_to=request.in_reply_to, context=context,
        ),
    )
    assert ack.message_id is not None
    return SendAnswer(message_id=ack.message_id, status=MessageStatus.queued)


@router.get("/delivery/summary", response_model=DeliverySummary, responses=errors(422, 503))
async def get_delivery_summary(
    session: SessionDep,
    since: Annotated[Moment | None, Query(description="from (inclusive), ISO 8601 with offset")] = None,
    until: Annotated[Moment | None, Query(description="until (exclusive), ISO 8601 with offset")] = None,
    hotel_id: Annotated[str | None, Query(max_length=64)] = None,
) -> DeliverySummary:
    """Delivery and failure rates, by channel, and response times (the runbook's SLA)."""
    if since is not None and until is not None and until <= since:
        raise InvalidRequest("until: must be after since")
    return await delivery_summary(session=session, since=since, until=until, hotel_id=hotel_id)


def _check_template(templates: TemplatesDep, request: SendRequest) -> None:
    known = {info.name: info for info in templates.describe()}
    info = known.get(request.template)
    if info is None:
        raise InvalidRequest(f"template: unknown template {request.template!r}; known: {', '.join(sorted(known))}")
    if request.channel is not None and request.channel.value not in info.channels:
        raise InvalidRequest(f"channel: template {request.template!r} has no {request.channel.value} version")
    if request.template == "free_text" and not request.context.body:
        raise InvalidRequest("context.body: a free_text message needs the text to send")
    if request.template in OFFER_TEMPLATES and not request.context.upsell_offer:
        raise InvalidRequest(f"context.upsell_offer: template {request.template!r} needs the offer to present")
