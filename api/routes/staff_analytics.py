"""The executive dashboard (CONTRACT §2, role `ops`): `/analytics`, and "Medir agora".

A caller limited to some hotels (`api.access`) sees `/analytics` of one of its
hotels at a time (the dashboard's figures are per hotel, or of every hotel);
another `hotel_id` is 403.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from api.deps import ServicesDep, TemporalClientDep
from api.staff import dashboard_card, labels, svg_charts
from api.staff.route import OpsPageDep, StaffRoute, read_form
from api.staff.session import CSRF_FIELD, check_csrf
from guest_journey.database import utcnow
from guest_journey.kpis import Kpi
from services import dashboard
from services.kpi_schedule import measure_kpis_now
from services.kpi_tables import WindowKind

logger = logging.getLogger(__name__)
router = APIRouter(route_class=StaffRoute, include_in_schema=False, tags=["staff pages"])
MEASURE_WAIT = timedelta(seconds=30)  # "Medir agora" waits this long, then the page says it is still running


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
    form = await read_form(request)
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
