"""The pages for staff (CONTRACT §2, role `ops`): the operations panel
`/guest-experience`, the executive dashboard `/analytics`, and `/login` /
`/logout` for browsers.

A browser signs in at `/login` with its API key and keeps a session cookie
(`api.staff.session`); a script may send the same `Authorization: Bearer`
key. The panel is exactly `GET /guest-experience` (its forms post to the
same address), so it never shadows the JSON routes below it
(`/guest-experience/{reservation_id}`, `/guest-experience/journey`).

A caller limited to some hotels (`api.access`, a key `key:role:hotel-a|hotel-b`
or a session signed in with one) sees and acts on only their journeys, and
`/analytics` of one of its hotels at a time (the dashboard's figures are per
hotel, or of every hotel); another `hotel_id` is 403.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from api.access import AmbiguousJourney, Principal, check_reservation, journey_id_for
from api.deps import ServicesDep, SettingsDep, TemporalClientDep
from api.service_status import service_status
from api.staff import actions, attention, dashboard_card, labels, svg_charts
from api.staff.actions import FormError, PanelForm
from api.staff.panel import PanelJourney, build_panel
from api.staff.route import LOGIN_PATH, StaffPage, StaffPageDep, StaffRoute
from api.staff.session import (
    CSRF_FIELD,
    StaffCaller,
    StaffCallerDep,
    check_csrf,
    clear_session_cookie,
    end_session,
    key_role,
    live_session,
    make_session_cookie,
    may_use_staff_pages,
    session_role,
    set_session_cookie,
)
from communications.message_store import list_for_reservation
from guest_journey.database import utcnow
from guest_journey.kpis import Kpi
from guest_journey.reservations import RESERVATION_ID
from services import dashboard
from services.errors import Conflict, DomainError, NotFound, Unavailable
from services.journey_service import NotInDoubt, read_journey
from services.kpi_schedule import measure_kpis_now
from services.kpi_store import WindowKind

logger = logging.getLogger(__name__)
router = APIRouter(route_class=StaffRoute, include_in_schema=False, tags=["staff pages"])
MEASURE_WAIT = timedelta(seconds=30)  # "Medir agora" waits this long, then the page says it is still running

PANEL_PATH = "/guest-experience"
_RESERVATION = re.compile(RESERVATION_ID)
FORM_FIELDS = 40
DONE = {
    "sent": "Mensagem enviada pela jornada; acompanhe o status na linha do tempo.",
    "reply": "Resposta do hóspede registrada.",
    "chat": "Resposta enviada no chat web.",
    "again": "A mensagem em dúvida será enviada novamente, uma vez, pelo mesmo canal; acompanhe o status na linha do tempo.",
}
ACTIONS = ("send", "reply", "chat", "send_again")


def _with_caller(page: StaffPageDep, caller: StaffCallerDep) -> StaffPage:
    page.caller = caller
    return page


OpsPageDep = Annotated[StaffPage, Depends(_with_caller)]


# -- the operations panel -------------------------------------------------------


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
    form = PanelForm(await _read_form(request))
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


async def _read_form(request: Request) -> FormData:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise HTTPException(415, "send the page's form (application/x-www-form-urlencoded)")
    return await request.form(max_files=0, max_fields=FORM_FIELDS)


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
    return build_panel(
        view=view, messages=messages, policy=services.policy.for_hotel(view.hotel_id),
        settings=services.settings, templates=services.templates.describe(),
    )


# -- the executive dashboard ------------------------------------------------------


@router.get("/analytics", response_class=HTMLResponse, name="staff_analytics")
async def show_analytics(
    page: OpsPageDep,
    services: ServicesDep,
    hotel_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
    window: Annotated[str | None, Query(max_length=8)] = None,
    measure_problem: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """The card **Jornada digital**: satisfaction, upsell conversion and average response
    time against their targets, with their trend; check-in adoption; failures by channel.
    It only reads the snapshots the KPI schedule stores (`services.kpi_windows`)."""
    now = utcnow()
    policy = services.policy
    principal = page.principal
    hotel = hotel_id or None
    if hotel is not None:
        principal.check_hotel(hotel)
    elif principal.hotels is not None:  # no figures of "every hotel" for a caller of some
        hotel = min(principal.hotels)
    kind = WindowKind.week if window == WindowKind.week.value else WindowKind.day
    hotel_policy = policy.for_hotel(hotel) if hotel else policy
    targets, zone = hotel_policy.kpi_targets, hotel_policy.timezone
    context: dict[str, Any] = {
        "current": "analytics", "title": "Analytics · Jornada digital", "labels": labels,
        "hotel_id": hotel or "", "since": since or "", "until": until or "", "window": kind.value,
        "period_error": None, "board": None, "charts": {}, "targets": targets, "headline": dashboard_card.headline,
        "measure_problem": measure_problem == "unfinished",
    }
    async with services.sessions() as session:
        known = await dashboard.known_hotels(session=session, configured=list(policy.hotels))
        context["hotels"] = sorted(principal.hotels) if principal.hotels is not None else known
        context["every_hotel"] = not principal.scoped
        try:
            period = dashboard.Period.choose(
                since=_date(since, "De"), until=_date(until, "Até"), kind=kind, zone=zone, now=now)
        except dashboard.PeriodError as error:
            context["period_error"] = str(error)
            return page.render("analytics.html", context, 422)
        board = await dashboard.build_dashboard(session=session, hotel_id=hotel, period=period,
                                                     targets=targets, now=now)
    context.update(board=board, charts=_charts(board), since=period.first.isoformat(),
                   until=period.last.isoformat())
    return page.render("analytics.html", context)


@router.post("/analytics/measure", response_class=HTMLResponse, name="staff_analytics_measure")
async def measure_now(
    request: Request,
    page: OpsPageDep,
    services: ServicesDep,
    client: TemporalClientDep,
) -> Response:
    """"Medir agora": run the KPI schedule's workflow at once and wait for it (the same
    activity as every hour writes the snapshots and sends the alerts), then show the
    dashboard again."""
    form = await _read_form(request)
    check_csrf(request, page.settings, page.caller, str(form.get(CSRF_FIELD) or ""))
    back = str(form.get("back") or "")
    target = back if back.startswith("/analytics") and "//" not in back and len(back) <= 500 else "/analytics"
    try:
        async with asyncio.timeout(MEASURE_WAIT.total_seconds()):
            await measure_kpis_now(client, services.settings.task_queue)
    except (TimeoutError, RPCError, WorkflowFailureError) as error:
        logger.warning("KPI measure on demand did not finish: %s", type(error).__name__)
        separator = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{separator}{urlencode({'measure_problem': 'unfinished'})}", status_code=303)
    return RedirectResponse(target, status_code=303)


def _date(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise dashboard.PeriodError(f"{name}: “{text}” não é uma data (AAAA-MM-DD)") from None


def _charts(board: dashboard.Dashboard) -> dict[str, Any]:
    targets = board.targets

    def points(kpi: Kpi, scale: float = 1.0) -> list[svg_charts.Point]:
        return [svg_charts.Point(point.label, None if point.value is None else point.value * scale)
                for point in board.series(kpi)]

    def pct(value: float) -> str:
        return f"{value:.0f}%"

    def minutes(value: float) -> str:
        return f"{value:.0f} min"

    channels = sorted(board.delivery.by_channel.items())
    return {
        "satisfaction": svg_charts.line_chart(
            chart_id="satisfaction", title="Satisfação média (0-10) por janela", points=points(Kpi.satisfaction),
            fmt=lambda value: f"{value:.1f}", target=targets.satisfaction_min, y_max=10.0,
            target_label=f"meta ≥ {labels.decimal(targets.satisfaction_min)}"),
        "nps": svg_charts.line_chart(
            chart_id="nps", title="NPS por janela", points=points(Kpi.nps), fmt=lambda value: f"{value:.0f}",
            y_min=-100.0, y_max=100.0),
        "upsell": svg_charts.line_chart(
            chart_id="upsell", title="Conversão de upsell por janela (%)", points=points(Kpi.upsell_conversion, 100),
            fmt=pct, target=targets.upsell_conversion_min * 100,
            target_label=f"meta ≥ {labels.percent(targets.upsell_conversion_min, 0)}"),
        "response": svg_charts.line_chart(
            chart_id="response", title="Tempo médio de resposta por janela (min)",
            points=points(Kpi.avg_response_time), fmt=minutes, target=targets.response_time_max_minutes,
            higher_is_better=False, target_label=f"meta ≤ {labels.decimal(targets.response_time_max_minutes, 0)} min"),
        "checkin": svg_charts.line_chart(
            chart_id="checkin", title="Adoção do check-in online por janela (%)",
            points=points(Kpi.checkin_adoption, 100), fmt=pct, y_max=100.0),
        "failures": svg_charts.bar_chart(
            chart_id="failures", title="Taxa de falha de entrega por canal (%)",
            bars=[svg_charts.Point(labels.label(labels.CHANNELS, name), figures.failure_rate * 100)
                  for name, figures in channels],
            fmt=lambda value: f"{value:.1f}%", limit=targets.failure_rate_max * 100,
            limit_label=f"limite {labels.percent(targets.failure_rate_max, 0)}"),
    }


# -- signing in ---------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never `//elsewhere` or `https://elsewhere`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return PANEL_PATH
    return target


@router.get(LOGIN_PATH, response_class=HTMLResponse, name="staff_login")
async def show_login(
    request: Request, page: StaffPageDep, settings: SettingsDep, services: ServicesDep,
    next: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    session = await live_session(request, services)
    role = session_role(settings, session) if session is not None else None
    if role is not None:
        page.caller = StaffCaller(role=role, via="session")
    return _login_page(page, next=_safe_next(next), signed_in_as=role)


@router.post(LOGIN_PATH, response_class=HTMLResponse, name="staff_login_submit")
async def submit_login(
    request: Request,
    page: StaffPageDep,
    settings: SettingsDep,
    api_key: Annotated[str, Form(max_length=500)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    target = _safe_next(next)
    check_csrf(request, settings, None, csrf_token)
    key = api_key.strip()
    if not settings.api_key_roles:
        return _login_page(page, next=target, error="Nenhuma chave de API está configurada neste servidor.",
                           status_code=400)
    role = key_role(settings, key) if key else None
    if role is None:
        logger.warning("staff sign-in refused: unknown API key")
        return _login_page(page, next=target, error="Chave de API inválida.", status_code=401)
    if not may_use_staff_pages(role):
        return _login_page(page, next=target, status_code=403,
                           error=f"Esta chave tem o papel {role}; as páginas da equipe pedem o papel ops.")
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, settings, make_session_cookie(settings.resolved_secret_key(), role, key,
                                                                datetime.now(UTC)))
    logger.info("staff signed in", extra={"role": role})
    return response


def _login_page(page: StaffPage, *, next: str, error: str | None = None, signed_in_as: str | None = None,
                status_code: int = 200) -> HTMLResponse:
    context = {
        "title": "Entrar", "current": None, "next": next, "error": error, "signed_in_as": signed_in_as,
        "keys_configured": bool(page.settings.api_key_roles),
    }
    return page.render("login.html", context, status_code)


@router.post("/logout", name="staff_logout")
async def submit_logout(
    request: Request, settings: SettingsDep, services: ServicesDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_csrf(request, settings, None, csrf_token)
    await end_session(request, services)
    return _signed_out(settings)


@router.get("/logout", name="staff_logout_link")
async def follow_logout(request: Request, settings: SettingsDep, services: ServicesDep) -> Response:
    """Signing out from a link: ending a session is harmless to ask for. The session is
    revoked on the server (`api.staff.session.end_session`), not only forgotten by the browser."""
    await end_session(request, services)
    return _signed_out(settings)


def _signed_out(settings: SettingsDep) -> Response:
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    clear_session_cookie(response, settings)
    return response
