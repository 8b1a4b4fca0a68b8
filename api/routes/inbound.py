"""Recording what a guest wrote (runbook: "Registrar resposta manual do hóspede")."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field

from api.access import journey_id_for
from api.deps import PrincipalDep, SessionDep, SettingsDep, TemporalClientDep, require_role
from api.error_responses import ROLE_ERRORS, errors
from communications.inbound import InboundResult, MatchedBy
from communications.mail_in_store import (
    UNMATCHED_REASON_TEXTS,
    UnmatchedReason,
    list_unmatched_mail,
)
from guest_journey.database import utcnow
from guest_journey.guest_links import message_replied_to
from guest_journey.reservations import HOTEL_ID_PATTERN, RESERVATION_ID, Channel, Moment
from services.inbound_messages import receive_inbound

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/communications", tags=["communications"],
                   dependencies=[Depends(require_role("ops"))], responses=ROLE_ERRORS)


class InboundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    sender: str = Field(min_length=1, max_length=320, description="the guest's e-mail, phone or chat id")
    body: str = Field(min_length=1, max_length=20_000)
    in_reply_to: str | None = Field(default=None, max_length=300, description="the message answered")
    to: str | None = Field(
        default=None, max_length=320,
        description="the address the guest wrote to: a reply+<token>@ address names the message answered",
    )
    reservation_id: str | None = Field(default=None, pattern=RESERVATION_ID)
    hotel_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=HOTEL_ID_PATTERN,
        description="the reservation's hotel, with GUEST_JOURNEY_WORKFLOW_ID_SCOPE=hotel when several hotels "
        "use the same reservation id (otherwise not needed)",
    )
    received_at: Moment | None = None


class InboundAnswer(BaseModel):
    message_id: str
    reservation_id: str | None
    matched_by: MatchedBy | None
    in_reply_to: str | None
    response_time_minutes: float | None
    duplicate: bool


@router.post(
    "/messages/inbound", response_model=InboundAnswer, status_code=status.HTTP_201_CREATED,
    responses=errors(403, 404, 409, 413, 422, 503, why={
        403: "`hotel_id` is not one of the key's hotels",
        404: "no journey for `reservation_id` (or, for a key limited to some hotels, none of them matches)",
        409: "(hotel scope) several hotels use `reservation_id` and `hotel_id` does not say which",
    }),
)
async def record_inbound_message(
    request: InboundRequest, client: TemporalClientDep, session: SessionDep, settings: SettingsDep,
    principal: PrincipalDep,
) -> InboundAnswer:
    """Store the guest's message, matched to its reservation (by `reservation_id`,
    by `in_reply_to`, else by the sender's address); unmatched ones are kept and
    listed for staff, never dropped. A key limited to some hotels matches only their
    journeys, and a message that matches none of them is refused (404): it would
    belong to no hotel the key may see."""
    reservation_id = request.reservation_id and await journey_id_for(
        principal, session=session, scope=settings.workflow_id_scope,
        reservation_id=request.reservation_id, hotel_id=request.hotel_id,
    )
    result = await receive_inbound(
        session=session,
        client=client,
        channel=request.channel,
        sender=request.sender,
        body=request.body,
        received_at=request.received_at or utcnow(),
        in_reply_to=request.in_reply_to or _replied_by_address(request.to, settings),
        reservation_id=reservation_id,
        hotels=principal.hotel_filter(),
    )
    return answer_for(result)


def _replied_by_address(to: str | None, settings: SettingsDep) -> str | None:
    return message_replied_to(settings.verification_secret_keys(), to) if to else None


def answer_for(result: InboundResult) -> InboundAnswer:
    return InboundAnswer(
        message_id=result.message.id,
        reservation_id=result.message.reservation_id,
        matched_by=result.matched_by,
        in_reply_to=result.message.in_reply_to,
        response_time_minutes=result.response_time_minutes,
        duplicate=result.duplicate,
    )



class UnmatchedMail(BaseModel):
    received_at: datetime
    source: str = Field(description="smtp (`guest-journey mail-in`) or imap (`mail-in --imap`)")
    sender: str | None
    subject: str | None
    reason: str | None
    reason_text: str | None = Field(description="the reason, in staff's words (pt-BR)")
    attachments: list[dict[str, Any]] = Field(description="each attachment's name and size (bytes); never its content")
    message_id: str | None = Field(description="the guest message it was stored as, when it was")


@router.get("/mail-in/unmatched", response_model=list[UnmatchedMail], responses=errors(422))
async def unmatched_mail(
    session: SessionDep, principal: PrincipalDep, limit: int = Query(default=100, ge=1, le=500)
) -> list[UnmatchedMail]:
    """Guests' e-mails (by SMTP or from the mailbox) no reservation was found for, newest
    first, with why ("Mensagens sem reserva" for staff to follow up). They belong to no
    hotel, so a key limited to some hotels sees none."""
    if principal.hotel_filter() is not None:
        return []
    return [
        UnmatchedMail(
            received_at=row.received_at, source=row.source, sender=row.sender, subject=row.subject,
            reason=row.reason, reason_text=_reason_text(row.reason),
            attachments=row.attachments, message_id=row.message_ref,
        )
        for row in await list_unmatched_mail(session=session, limit=limit)
    ]


def _reason_text(reason: str | None) -> str | None:
    if reason is None or reason not in UnmatchedReason.__members__:
        return None
    return UNMATCHED_REASON_TEXTS[UnmatchedReason(reason)]
