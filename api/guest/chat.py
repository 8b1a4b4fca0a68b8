"""`/guest/{token}/chat`: the reservation's web chat with the hotel.

The conversation is the reservation's `webchat` messages, both directions,
oldest first, since the reservation's current guest took it (a reservation
given to another guest does not show them the earlier guest's chat). A
guest's message is stored as an inbound `webchat` message
(matched by the link's reservation), counted and signalled to the journey
(`services.inbound_messages`) and listed in the operations view. `chat/messages` answers
the conversation as JSON for `chat.js`, which polls it so staff replies
appear without a reload; without JavaScript the form posts and the page
reloads. A journey that has ended (cancelled, a no-show, closed — as a GDPR
erase ends it first) closes its chat: the page shows the conversation and
says so, and a post is refused (409).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.guest.errors import GuestRoute
from api.guest.forms import read_form
from api.guest.visit import CSRF_FIELD, ChatVisit, Visit
from communications.message_store import MessageRecord, list_for_reservation
from guest_journey.messages import MessageDirection, MessageStatus
from guest_journey.reservations import Channel
from services.inbound_messages import receive_inbound

router = APIRouter(route_class=GuestRoute)

MESSAGE_LIMIT = 2000
SHOWN_MESSAGES = 200
POLL_SECONDS = 4


async def conversation(visit: Visit) -> list[MessageRecord]:
    records = await list_for_reservation(session=visit.session, reservation_id=visit.reservation_id)
    changes = visit.journey.guest_changes
    since = changes[-1].at if changes else None
    shown = [
        record for record in records
        if record.channel == Channel.webchat.value and record.body_text
        and record.status != MessageStatus.failed.value and (since is None or record.created_at >= since)
    ]
    return shown[-SHOWN_MESSAGES:]


def _as_item(visit: Visit, record: MessageRecord) -> dict[str, Any]:
    inbound = record.direction == MessageDirection.inbound.value
    return {
        "id": record.id,
        "direction": record.direction,
        "who": visit.tr.t("chat.you" if inbound else "chat.hotel"),
        "text": record.body_text or "",
        "at": record.created_at.isoformat(),
        "at_label": visit.tr.datetime(record.created_at),
    }


def _closed(visit: Visit) -> bool:
    return visit.journey.stage.is_final


def _render(visit: Visit, items: list[dict[str, Any]], *, body: str = "", error: str | None = None,
            status_code: int = 200) -> HTMLResponse:
    return visit.render(
        "guest/chat.html", status_code, closed=_closed(visit),
        title=visit.tr.t("chat.title"), items=items, body=body, error=error, limit=MESSAGE_LIMIT,
        action=visit.path("chat"), poll_path=visit.path("chat/messages"), poll_seconds=POLL_SECONDS,
    )


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


@router.get("/{token}/chat", response_class=HTMLResponse, name="guest_chat")
async def show_chat(visit: ChatVisit) -> Response:
    return _render(visit, [_as_item(visit, record) for record in await conversation(visit)])


@router.get("/{token}/chat/messages", name="guest_chat_messages")
async def list_chat_messages(visit: ChatVisit) -> Response:
    items = [_as_item(visit, record) for record in await conversation(visit)]
    return JSONResponse({"messages": items})


@router.post("/{token}/chat", name="guest_chat_send")
async def send_chat_message(request: Request, visit: ChatVisit) -> Response:
    form = await read_form(request, visit.tr.language)
    visit.check_csrf(form.get(CSRF_FIELD))
    body = form.raw("body").strip()
    error = None
    status_code = 422
    if _closed(visit):
        error, status_code = visit.tr.t("chat.closed"), 409
    elif not body:
        error = visit.tr.t("chat.body.required")
    elif len(body) > MESSAGE_LIMIT:
        error = visit.tr.t("form.too_long", max=MESSAGE_LIMIT)
    if error is not None:
        if _wants_json(request):
            return JSONResponse({"error": error}, status_code=status_code)
        items = [_as_item(visit, record) for record in await conversation(visit)]
        return _render(visit, items, body=body, error=error, status_code=status_code)
    records = await conversation(visit)
    last = records[-1] if records else None
    replying_to = last.id if last is not None and last.direction == MessageDirection.outbound.value else None
    received_at = datetime.now(UTC)
    result = await receive_inbound(
        session=visit.session, client=visit.services.temporal, channel=Channel.webchat,
        sender=f"webchat:{visit.reservation_id}", body=body, received_at=received_at,
        reservation_id=visit.reservation_id, in_reply_to=replying_to,
    )
    if _wants_json(request):
        return JSONResponse({"message": _as_item(visit, result.message)}, status_code=201)
    response = RedirectResponse(visit.path("chat") + f"?lang={visit.tr.language}#composer", status_code=303)
    visit.set_cookies(response)
    return response
