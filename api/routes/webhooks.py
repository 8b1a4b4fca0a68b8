"""Channel webhooks: WhatsApp's verification challenge, delivery statuses and
guest messages. Meta redelivers; every event is applied once. A message of a
journey that a report leaves `failed` (not one delivered or read before) is
also told to its journey, which may send it again (as a template, when the
24-hour window had closed); it does so once, however often the report comes."""

from __future__ import annotations

import json
import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from api.deps import ServicesDep, SessionDep, TemporalClientDep
from api.error_responses import errors, json_errors_inline, page_errors
from communications.message_status import StatusReport, apply_status_updates
from communications.whatsapp_webhook import (
    SIGNATURE_HEADER,
    WebhookError,
    WebhookInvalid,
    parse_webhook,
    verify_challenge,
    verify_signature,
)
from guest_journey.messages import MessageStatus
from guest_journey.reservations import Channel
from services.inbound_messages import receive_inbound
from services.journey_service import notify_failed_later

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class WebhookAnswer(BaseModel):
    statuses: int
    messages: int


def _secret(value: object) -> str:
    return value.get_secret_value() if value is not None else ""  # type: ignore[attr-defined]


@router.get(
    "/whatsapp", response_class=PlainTextResponse,
    responses={**page_errors(403, 422, media_type="text/plain", why={
        403: "hub.verify_token does not match, or verification is not configured",
        422: "hub.challenge is missing",
    }), **json_errors_inline(429)},
)
async def verify_whatsapp_webhook(
    services: ServicesDep,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
) -> PlainTextResponse:
    try:
        answer = verify_challenge(mode, token, challenge, _secret(services.settings.whatsapp_verify_token))
    except WebhookError as error:
        return PlainTextResponse(str(error), status_code=error.status_code)
    return PlainTextResponse(answer)


@router.post(
    "/whatsapp", response_model=WebhookAnswer,
    responses=errors(401, 413, 422, 429, 503, why={
        401: "X-Hub-Signature-256 is missing or does not match the body",
        422: "the body is not a WhatsApp webhook",
    }),
)
async def receive_whatsapp_webhook(
    request: Request, services: ServicesDep, session: SessionDep, client: TemporalClientDep
) -> WebhookAnswer | JSONResponse:
    raw = await request.body()
    try:
        verify_signature(raw, request.headers.get(SIGNATURE_HEADER), _secret(services.settings.whatsapp_app_secret))
        try:
            payload = json.loads(raw)
        except ValueError as error:
            raise WebhookInvalid("the body is not JSON") from error
        events = parse_webhook(payload)
    except WebhookError as error:
        return JSONResponse({"detail": str(error)}, status_code=error.status_code)
    reports = [
        StatusReport(
            provider_message_id=update.provider_message_id, status=update.status, at=update.at,
            reason=update.reason, callback_message_id=update.callback_data,
            event_id=f"whatsapp:{update.provider_message_id}:{update.status.value}:{int(update.at.timestamp())}",
        )
        for update in events.statuses
    ]
    applied = await apply_status_updates(session=session, reports=reports)
    for update, found in zip(events.statuses, applied, strict=True):
        if found is None:
            logger.info("status for a message we do not know", extra={"status": update.status.value})
        elif update.status is MessageStatus.failed and found.status == MessageStatus.failed.value:
            await notify_failed_later(
                client=client, message=found, error_code=update.error_code, reason=update.reason, at=update.at
            )
    for message in events.messages:
        await receive_inbound(
            session=session, client=client, channel=Channel.whatsapp, sender=message.sender, body=message.body,
            received_at=message.at, in_reply_to=message.in_reply_to_provider_id,
            provider_message_id=message.provider_message_id,
        )
    return WebhookAnswer(statuses=len(events.statuses), messages=len(events.messages))
