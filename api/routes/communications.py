"""The runbook's communications routes: templates, sending through the journey,
sending a message in doubt again, recording a guest's reply, and the delivery summary."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.access import check_message, check_reservation, journey_id_for
from api.deps import (
    PrincipalDep,
    SessionDep,
    SettingsDep,
    TemplatesDep,
    TemporalClientDep,
    require_role,
)
from api.error_responses import ROLE_ERRORS, errors
from api.idempotency import IdempotencyDep
from communications.delivery_summary import DeliverySummary, delivery_summary
from communications.staff_message import BODY_LIMIT, MESSAGE_ID
from communications.templates import TemplateInfo
from guest_journey.messages import MessageStatus
from guest_journey.reservations import HOTEL_ID_PATTERN, RESERVATION_ID, Channel, Moment
from services.errors import InvalidRequest
from services.journey_service import send_message_again
from services.staff_messages import send_staff_message

router = APIRouter(prefix="/communications", tags=["communications"],
                   dependencies=[Depends(require_role("ops"))], responses=ROLE_ERRORS)
CONTEXT_KEYS = 16  # more than staff may give: a context naming others is refused naming one


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reservation_id: str = Field(pattern=RESERVATION_ID)
    hotel_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=HOTEL_ID_PATTERN,
        description="the reservation's hotel, with GUEST_JOURNEY_WORKFLOW_ID_SCOPE=hotel when several hotels "
        "use the same reservation id (otherwise not needed)",
    )
    template: str = Field(min_length=1, max_length=64)
    channel: Channel | None = None
    in_reply_to: str | None = Field(default=None, pattern=MESSAGE_ID, description="our id of the guest's message")
    context: dict[str, Any] = Field(
        default_factory=dict, max_length=CONTEXT_KEYS,
        description="what staff give the template, nothing else: `body` (the text of a free_text message, "
        f"at most {BODY_LIMIT} characters), `upsell_offer` (the offer of an offer template), `journey_stage` "
        "(accepted, not used: the journey knows its stage); the journey fills the rest (guest, hotel, dates, "
        "links), and a context naming any other key is refused (422 naming it)",
    )


class SendAnswer(BaseModel):
    message_id: str
    status: MessageStatus


@router.get("/templates", response_model=list[TemplateInfo])
async def list_templates(templates: TemplatesDep) -> list[TemplateInfo]:
    return templates.describe()


@router.post(
    "/send", response_model=SendAnswer, status_code=status.HTTP_202_ACCEPTED,
    responses=errors(403, 404, 409, 413, 422, 503, why={
        403: "`hotel_id` is not one of the key's hotels",
        409: "the journey has finished, a request with this `Idempotency-Key` is still in progress, or (hotel "
        "scope) several hotels use this reservation id and `hotel_id` does not say which",
        422: "invalid input, an unknown context key, or an `Idempotency-Key` reused with a different request: "
        "`detail` names it",
    }),
)
async def send_message(
    request: SendRequest, client: TemporalClientDep, session: SessionDep, templates: TemplatesDep,
    once: IdempotencyDep, principal: PrincipalDep, settings: SettingsDep,
) -> Response:
    """Send (or resend) a message through the journey: it becomes a step of its
    own (`manual:<id>`) in the timeline and is delivered with retries. With an
    `Idempotency-Key`, a repeated request sends once and gets the first answer."""
    journey = await journey_id_for(principal, session=session, scope=settings.workflow_id_scope,
                                   reservation_id=request.reservation_id, hotel_id=request.hotel_id)
    await check_reservation(principal, client=client, session=session, reservation_id=journey)

    async def send() -> tuple[int, SendAnswer]:
        message_id = await send_staff_message(
            session=session, client=client, catalogue=templates, reservation_id=journey,
            request_id=once.request_id(), template=request.template, channel=request.channel,
            context=request.context, in_reply_to=request.in_reply_to,
        )
        return status.HTTP_202_ACCEPTED, SendAnswer(message_id=message_id, status=MessageStatus.queued)

    return await once.answer(send)


class SentAgain(BaseModel):
    """A message in doubt, handed back to its journey to be sent once more (same id, same channel)."""

    message_id: str
    reservation_id: str
    step_key: str


@router.post(
    "/messages/{message_id}/send-again", response_model=SentAgain, status_code=status.HTTP_202_ACCEPTED,
    responses=errors(404, 409, 422, 503, why={
        404: "no such message, or no journey for its reservation",
        409: "the message is not in doubt (`detail` names its status), its journey has finished, or a request "
        "with this `Idempotency-Key` is still in progress",
        422: "the journey's step is not in doubt (any more), or is being sent again already",
    }),
)
async def send_again(
    message_id: Annotated[str, Path(pattern=MESSAGE_ID, description="the message in doubt")],
    client: TemporalClientDep,
    session: SessionDep,
    once: IdempotencyDep,
    principal: PrincipalDep,
) -> Response:
    """Send an outbound message whose delivery is in doubt (status `in_doubt`: the provider
    may or may not have it) once more: its journey step is sent again on the same channel,
    with the same message id. Only a message in doubt is sent again. With an
    `Idempotency-Key`, a repeated request gets the first answer."""

    await check_message(principal, session=session, message_id=message_id)

    async def again() -> tuple[int, SentAgain]:
        message = await send_message_again(client=client, session=session, message_id=message_id,
                                           request_id=once.request_id())
        assert message.reservation_id is not None and message.step_key is not None
        return status.HTTP_202_ACCEPTED, SentAgain(message_id=message.id, reservation_id=message.reservation_id,
                                                   step_key=message.step_key)

    return await once.answer(again)


@router.get("/delivery/summary", response_model=DeliverySummary, responses=errors(403, 422, 503, why={
    403: "the key's role may not call this route, or `hotel_id` is not one of the key's hotels",
}))
async def get_delivery_summary(
    session: SessionDep,
    principal: PrincipalDep,
    since: Annotated[Moment | None, Query(description="from (inclusive), ISO 8601 with offset")] = None,
    until: Annotated[Moment | None, Query(description="until (exclusive), ISO 8601 with offset")] = None,
    hotel_id: Annotated[str | None, Query(max_length=64)] = None,
) -> DeliverySummary:
    """Delivery and failure rates, by channel, and response times (the runbook's SLA);
    of the key's hotels, for a key limited to some (another `hotel_id`: 403)."""
    if since is not None and until is not None and until <= since:
        raise InvalidRequest("until: must be after since")
    return await delivery_summary(session=session, since=since, until=until,
                                  hotels=principal.hotel_filter(hotel_id))
