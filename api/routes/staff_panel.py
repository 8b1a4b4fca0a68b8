"""The operations panel (CONTRACT §2, role `ops`): `/guest-experience`.

The panel is exactly `GET /guest-experience` (its forms post to the same
address), so it never shadows the JSON routes below it
(`/guest-experience/{reservation_id}`, `/guest-experience/journey`).

A caller limited to some hotels (`api.access`, a key `key:role:hotel-a|hotel-b`
or a session signed in with one) sees and acts on only their journeys.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.access import AmbiguousJourney, Principal, check_reservation, journey_id_for
from api.deps import ServicesDep, TemporalClientDep
from api.service_status import service_status
from api.staff import actions, attention, labels
from api.staff.actions import FormError, PanelForm
from api.staff.panel import PanelJourney, build_panel
from api.staff.route import PANEL_PATH, OpsPageDep, StaffPage, StaffRoute, read_form
from api.staff.session import CSRF_FIELD, check_csrf
from communications.message_store import list_for_reservation
from communications.response_times import reply_minutes
from guest_journey.database import utcnow
from guest_journey.reservations import RESERVATION_ID
from services.errors import Conflict, DomainError, NotFound, Unavailable
from services.journey_service import NotInDoubt, read_journey

router = APIRouter(route_class=StaffRoute, include_in_schema=False, tags=["staff pages"])

_RESERVATION = re.compile(RESERVATION_ID)
DONE = {
    "sent": "Mensagem enviada pela jornada; acompanhe o status na linha do tempo.",
    "reply": "Resposta do hóspede registrada.",
    "chat": "Resposta enviada no chat web.",
    "again": "A mensagem em dúvida será enviada novamente, uma vez, pelo mesmo canal; acompanhe o status na linha do tempo.",
}
ACTIONS = ("send", "reply", "chat", "send_again")


@router.get(PANEL_PATH, response_class=HTMLResponse, name="staff_panel")
async def show_panel(
    page: OpsPageDep,
    services: ServicesDep,
    client: TemporalClientDep,
    reservation_id: Annotated[str | None, Query(max_length=200)] = None,
    done: Annotated[str | None, Query(max_length=16)] = None,
    reply_to: Annotated[str | None, Query(max_length=64)] = None,
    fragment: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """Field **Reserva**, button **Carregar**: one journey, and the journeys that need attention."""
    only_timeline = fragment == "timeline"
    context = await _panel_context(page, services, client, (reservation_id or "").strip(), reply_to=reply_to,
                                   attention_list=not only_timeline)
    if only_timeline and context["journey"] is not None:
        return page.render("_timeline.html", context)
    context["done"] = DONE.get(done or "")
    return page.render("panel.html", context, context.pop("status_code"))


@router.post(PANEL_PATH, response_class=HTMLResponse, name="staff_panel_action")
async def act_on_journey(
    request: Request,
    page: OpsPageDep,
    services: ServicesDep,
    client: TemporalClientDep,
) -> Response:
    """The panel's forms: `action` is `send` (a template, or resend), `reply` (record the
    guest's reply), `chat` (answer in the web chat) or `send_again` (a message in doubt)."""
    form = PanelForm(await read_form(request))
    check_csrf(request, page.settings, page.caller, form.get(CSRF_FIELD))
    reservation_id, action = form.get("reservation_id"), form.get("action")
    if not _RESERVATION.match(reservation_id) or action not in ACTIONS:
        context = await _panel_context(page, services, client, reservation_id)
        context["form_error"] = FormError("action", "formulário incompleto: recarregue a reserva")
        return page.render("panel.html", context, 422)
    try:
        async with services.sessions() as session:
            await check_reservation(page.principal, client=client, session=session, reservation_id=reservation_id)
        if action == "send":
            await actions.send_message(services=services, client=client, reservation_id=reservation_id, form=form)
            done = "sent"
        elif action == "chat":
            await actions.answer_in_chat(services=services, client=client, reservation_id=reservation_id, form=form)
            done = "chat"
        elif action == "send_again":
            await actions.send_again(services=services, client=client, reservation_id=reservation_id, form=form)
            done = "again"
        else:
            await actions.record_guest_reply(services=services, client=client, reservation_id=reservation_id,
                                             form=form, hotels=page.principal.hotel_filter())
            done = "reply"
    except (FormError, DomainError) as error:
        if isinstance(error, Unavailable):
            raise
        context = await _panel_context(page, services, client, reservation_id)
        context.update(failed_action=action, form=form, form_error=_as_form_error(error))
        status = 422 if isinstance(error, FormError) else error.status_code
        return page.render("panel.html", context, status)
    query = urlencode({"reservation_id": reservation_id, "done": done})
    return RedirectResponse(f"{PANEL_PATH}?{query}#timeline", status_code=303)


def _as_form_error(error: FormError | DomainError) -> FormError:
    if isinstance(error, FormError):
        return error
    if isinstance(error, NotInDoubt):
        status = labels.label(labels.MESSAGE_STATUSES, error.status).lower()
        return FormError("action", f"a mensagem não está em dúvida (está {status}): não há o que enviar novamente")
    if isinstance(error, Conflict):
        return FormError("action", f"a jornada não aceita mais mensagens: {error.detail}")
    return FormError("action", error.detail)


async def _panel_context(
    page: StaffPage, services: ServicesDep, client: TemporalClientDep, reservation_id: str,
    *, reply_to: str | None = None, attention_list: bool = True,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "current": "panel", "title": "Painel de jornadas", "reservation_id": reservation_id,
        "journey": None, "done": None, "not_found": False, "invalid_id": False, "unavailable": None,
        "form": None, "form_error": None, "failed_action": None, "reply_to": reply_to, "same_id_in_hotels": [],
        "new_id": actions.new_request_id, "labels": labels, "status_code": 200,
        "attention_zone": services.policy.timezone,
    }
    context["attention"] = await _attention(page, services) if attention_list else []
    context["service_status"] = await service_status(
        client=client, sessions=services.sessions, settings=services.settings, now=utcnow(),
        hotels=page.principal.hotel_filter(),
    ) if attention_list else None
    if not reservation_id:
        return context
    if not _RESERVATION.match(reservation_id):
        context.update(invalid_id=True, status_code=422)
        return context
    try:
        async with services.sessions() as session:
            reservation_id = await journey_id_for(page.principal, session=session, reservation_id=reservation_id,
                                                  scope=services.settings.workflow_id_scope)
    except AmbiguousJourney as error:
        context.update(same_id_in_hotels=error.journey_ids, status_code=409)
        return context
    context["reservation_id"] = reservation_id
    try:
        journey = await _load_journey(services, client, reservation_id, page.principal)
    except NotFound:
        context.update(not_found=True, status_code=404)
        return context
    except Unavailable:
        context.update(status_code=503, unavailable=(
            "o Temporal não respondeu e a jornada não está no modelo de leitura; tente de novo em instantes."))
        return context
    context.update(journey=journey, title=f"Reserva {reservation_id}")
    return context


async def _attention(page: StaffPage, services: ServicesDep) -> list[attention.AttentionGroup]:
    policy = services.policy
    async with services.sessions() as session:
        return await attention.needs_attention(
            session=session, now=utcnow(), sla_of=lambda hotel: (policy.for_hotel(hotel) if hotel else policy).kpi_targets.response_time_max,
            hotels=page.principal.hotel_filter())


async def _load_journey(
    services: ServicesDep, client: TemporalClientDep, reservation_id: str, principal: Principal
) -> PanelJourney:
    async with services.sessions() as session:
        view = await read_journey(client=client, session=session, reservation_id=reservation_id)
        principal.hide_unless_visible(view.hotel_id, f"journey for reservation {reservation_id!r}")
        messages = await list_for_reservation(session=session, reservation_id=reservation_id)
        minutes = await reply_minutes(session=session, reservation_id=reservation_id)
    return build_panel(
        view=view, messages=messages, policy=services.policy.for_hotel(view.hotel_id),
        settings=services.settings, templates=services.templates.describe(), response_minutes=minutes,
    )
