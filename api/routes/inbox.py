"""The inbox (role `ops`): `/inbox`, every conversation with guests across
reservations and channels, unanswered first, each with a timer against its
hotel's reply target (`kpi_targets.response_time_max_minutes`).

- `GET /inbox` lists them (filters `hotel_id`, `channel`, `assignee`:
  `me`/`none`, `status`: `open`/`done`/`all`); `?fragment=list` is the list
  alone, what the page fetches when something changed.
- `GET /inbox/events` is a Server-Sent Events stream: an event `change` each
  time a message arrives or changes status, or staff act on a conversation
  (`services.conversations.inbox_version`, checked every `EVERY` seconds). The
  stream ends after `STREAM_FOR`; the browser reconnects by itself, and the
  page polls instead where EventSource is missing or fails.
- `GET /inbox/{reservation_id}/{channel}` is one conversation: its thread and
  the reply form; `POST` the same address replies (on the conversation's
  channel, through `services.staff_messages.reply_in_conversation`), assigns
  it to the caller or to nobody, marks it done or open again.

A caller limited to some hotels (`api.access`) sees only their conversations.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from api.deps import ServicesDep, TemporalClientDep
from api.staff import inbox, labels
from api.staff.actions import FormError, PanelForm, new_request_id, wait_until_stored
from api.staff.route import OpsPageDep, StaffPage, StaffRoute, read_form
from api.staff.session import CSRF_FIELD, check_csrf
from communications.response_times import reply_minutes, response_time_by_hotel
from guest_journey.database import utcnow
from guest_journey.reservations import RESERVATION_ID, Channel
from services.conversation_state import assign, mark_done
from services.conversations import (
    NOBODY,
    Conversation,
    ConversationFilters,
    ConversationStatus,
    get_conversation,
    inbox_version,
    list_conversations,
    thread,
)
from services.errors import Conflict, DomainError, NotFound
from services.staff_messages import FREE_TEXT, StaffMessageRefused, reply_in_conversation

router = APIRouter(route_class=StaffRoute, include_in_schema=False, tags=["staff pages"])

INBOX_PATH = "/inbox"
EVERY = 0.5
STREAM_FOR = 60.0
HEARTBEAT = 15.0
RESPONSE_PERIOD = timedelta(days=1)
_RESERVATION = re.compile(RESERVATION_ID)
DONE = {
    "reply": "Resposta enviada; acompanhe o status na conversa.",
    "assign": "A conversa agora é sua.",
    "unassign": "A conversa está sem responsável.",
    "done": "Conversa concluída: volta para a caixa quando o hóspede escrever de novo.",
    "reopen": "Conversa aberta de novo.",
}
ACTIONS = ("reply", "assign", "unassign", "done", "reopen")


def _target_of(services: ServicesDep) -> Any:
    policy = services.policy
    return lambda hotel: (policy.for_hotel(hotel) if hotel else policy).kpi_targets.response_time_max


@router.get(INBOX_PATH, response_class=HTMLResponse, name="staff_inbox")
async def show_inbox(
    page: OpsPageDep,
    services: ServicesDep,
    hotel_id: Annotated[str | None, Query(max_length=64)] = None,
    channel: Annotated[str | None, Query(max_length=16)] = None,
    assignee: Annotated[str | None, Query(max_length=8)] = None,
    status: Annotated[str | None, Query(max_length=8)] = None,
    fragment: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """Every conversation, unanswered first; filters **Hotel**, **Canal**, **Responsável**, **Situação**."""
    principal = page.principal
    chosen = {
        "hotel_id": hotel_id or "", "channel": channel if channel in labels.CHANNELS else "",
        "assignee": assignee if assignee in inbox.ASSIGNEES else "",
        "status": status if status in inbox.STATUSES else ConversationStatus.open.value,
    }
    filters = ConversationFilters(
        hotel_id=chosen["hotel_id"] or None, channel=chosen["channel"] or None,
        assignee={"me": page_who(page), "none": NOBODY}.get(chosen["assignee"]),
        status=ConversationStatus(chosen["status"]),
    )
    now = utcnow()
    target_of = _target_of(services)
    async with services.sessions() as session:
        found = await list_conversations(session=session, now=now, target_of=target_of,
                                         hotels=principal.hotel_filter(), filters=filters)
        version = await inbox_version(session=session)
        figures = await response_time_by_hotel(session=session, since=now - RESPONSE_PERIOD, until=now,
                                               hotels=principal.hotel_filter())
    zone = services.policy.timezone
    rows = [inbox.Row(conversation, zone, page_who(page), now) for conversation in found]
    unanswered = sum(1 for row in rows if row.c.unanswered)
    hotels = sorted(principal.hotels if principal.hotels is not None
                    else {*services.policy.hotels, *(row.c.hotel_id for row in rows if row.c.hotel_id)})
    context: dict[str, Any] = {
        "current": "inbox", "title": "Caixa de entrada", "rows": rows, "unanswered": unanswered,
        "version": version, "chosen": chosen, "hotels": hotels, "labels": labels, "inbox": inbox,
        "query": urlencode({key: value for key, value in chosen.items() if value}),
        "responses": inbox.hotel_responses(figures, {hotel: target_of(hotel) for hotel in figures if hotel}),
    }
    if fragment == "list":
        return page.render("_inbox_list.html", context)
    return page.render("inbox.html", context)


@router.get(f"{INBOX_PATH}/events", name="staff_inbox_events")
async def inbox_events(request: Request, page: OpsPageDep, services: ServicesDep) -> Response:
    """`text/event-stream`: `change` whenever the inbox may show something new (module rules).
    A caller that does not accept `text/event-stream` gets the current state's one event."""
    streaming = "text/event-stream" in request.headers.get("accept", "")

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        started = quiet_since = loop.time()
        last = None
        yield "retry: 1000\n\n"
        while last is None or (streaming and loop.time() - started < STREAM_FOR
                               and not await request.is_disconnected()):
            async with services.sessions() as session:
                version = await inbox_version(session=session)
            if version != last:
                yield f"event: change\ndata: {version}\n\n"
                last, quiet_since = version, loop.time()
            elif loop.time() - quiet_since > HEARTBEAT:
                yield ": still here\n\n"
                quiet_since = loop.time()
            await asyncio.sleep(EVERY)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get(INBOX_PATH + "/{reservation_id}/{channel}", response_class=HTMLResponse, name="staff_conversation")
async def show_conversation(
    reservation_id: str,
    channel: str,
    page: OpsPageDep,
    services: ServicesDep,
    done: Annotated[str | None, Query(max_length=16)] = None,
    fragment: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """One conversation: the thread, the reply form, **Assumir** and **Concluir**."""
    context = await _conversation_context(page, services, reservation_id, channel)
    if fragment == "thread":
        return page.render("_conversation_thread.html", context)
    context["done"] = DONE.get(done or "")
    return page.render("conversation.html", context)


@router.post(INBOX_PATH + "/{reservation_id}/{channel}", response_class=HTMLResponse,
             name="staff_conversation_action")
async def act_on_conversation(
    reservation_id: str,
    channel: str,
    request: Request,
    page: OpsPageDep,
    services: ServicesDep,
    client: TemporalClientDep,
) -> Response:
    """`action`: `reply` (free text `body`, or a canned `template`), `assign`, `unassign`, `done`, `reopen`."""
    form = PanelForm(await read_form(request))
    check_csrf(request, page.settings, page.caller, form.get(CSRF_FIELD))
    context = await _conversation_context(page, services, reservation_id, channel)
    conversation: Conversation = context["conversation"]
    action = form.get("action")
    try:
        if action not in ACTIONS:
            raise FormError("action", "formulário incompleto: recarregue a conversa")
        if action == "reply":
            await _reply(services, client, conversation, form)
        else:
            rid, hotel = conversation.reservation_id, conversation.hotel_id
            async with services.sessions() as session:
                if action in ("assign", "unassign"):
                    await assign(session=session, reservation_id=rid, channel=conversation.channel, hotel_id=hotel,
                                 assignee=page_who(page) if action == "assign" else None)
                else:
                    await mark_done(session=session, reservation_id=rid, channel=conversation.channel,
                                    hotel_id=hotel, done=action == "done")
    except (FormError, StaffMessageRefused, Conflict, NotFound) as error:
        context.update(form=form, form_error=_form_error(error))
        return page.render("conversation.html", context, 409 if isinstance(error, Conflict) else 422)
    target = f"{INBOX_PATH}/{conversation.reservation_id}/{conversation.channel}?{urlencode({'done': action})}"
    return RedirectResponse(target + "#thread", status_code=303)


def page_who(page: StaffPage) -> str:
    return page.caller.who if page.caller is not None else "local"


async def _reply(services: ServicesDep, client: TemporalClientDep, conversation: Conversation, form: PanelForm) -> None:
    template = form.get("template") or FREE_TEXT
    context = {"body": form.text("body", what="a resposta")} if template == FREE_TEXT else {}
    async with services.sessions() as session:
        message_id = await reply_in_conversation(
            session=session, client=client, catalogue=services.templates, reservation_id=conversation.reservation_id,
            channel=Channel(conversation.channel), request_id=form.request_id(), template=template, now=utcnow(),
            context=context,
        )
    await wait_until_stored(services, message_id)


def _form_error(error: DomainError | FormError) -> FormError:
    if isinstance(error, FormError):
        return error
    if isinstance(error, StaffMessageRefused):
        if error.problem == "window_closed":
            return FormError("body", "a janela de 24 horas do WhatsApp fechou: escolha uma resposta pronta")
        if error.key == "template":
            return FormError("template", "escolha uma resposta pronta da lista")
        return FormError("body", f"confira a resposta: {error.reason}")
    if isinstance(error, Conflict):
        return FormError("action", f"a jornada não aceita mais mensagens: {error.detail}")
    return FormError("action", error.detail)


async def _conversation_context(
    page: StaffPage, services: ServicesDep, reservation_id: str, channel: str
) -> dict[str, Any]:
    if not _RESERVATION.match(reservation_id) or channel not in labels.CHANNELS:
        raise NotFound(f"no conversation {reservation_id!r} on {channel!r}")
    now = utcnow()
    async with services.sessions() as session:
        conversation = await get_conversation(session=session, reservation_id=reservation_id, channel=channel,
                                              now=now, target_of=_target_of(services))
        if conversation is None:
            raise NotFound(f"no conversation for reservation {reservation_id!r} on {channel}")
        page.principal.hide_unless_visible(conversation.hotel_id, f"conversation for reservation {reservation_id!r}")
        messages = await thread(session=session, reservation_id=reservation_id, channel=channel)
        minutes = await reply_minutes(session=session, reservation_id=reservation_id)
        version = await inbox_version(session=session)
    zone = (services.policy.for_hotel(conversation.hotel_id) if conversation.hotel_id else services.policy).timezone
    row = inbox.Row(conversation, zone, page_who(page), now)
    return {
        "current": "inbox", "title": f"Conversa · {row.guest} · {row.channel_label}", "row": row,
        "conversation": conversation, "entries": inbox.thread_entries(messages, minutes, zone),
        "canned": inbox.canned_replies(services.templates.describe(), channel),
        "window_note": inbox.window_note(conversation, now, zone), "version": version,
        "labels": labels, "inbox": inbox, "form": None, "form_error": None, "done": None,
        "new_id": new_request_id,
    }
