"""The journey policy page (role `admin`): `/policy`.

GET shows the policy in force for each hotel the caller may see. POST tries a
draft (pasted YAML) without loading it: every mistake with its line
(`guest_journey.policy_check`), else one reservation's schedule under the policy
in force and under the draft side by side (a sample, or a running journey by its
reservation id) and how many running journeys would gain, lose or move each step
(`services.policy_effect`). Loading a policy stays an explicit step: the file
named by GUEST_JOURNEY_POLICY_FILE, then a restart.
"""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import ServicesDep
from api.staff import labels
from api.staff.route import OpsPageDep, StaffPage, StaffRoute, read_form
from api.staff.session import CSRF_FIELD, check_csrf
from guest_journey import read_model_queries
from guest_journey.database import utcnow
from guest_journey.policy import JourneyPolicy
from guest_journey.policy_check import check_policy_text
from services import dashboard
from services.policy_effect import compare_schedules, journey_facts, live_effect
from services.policy_preview import sample_reservation

router = APIRouter(route_class=StaffRoute, include_in_schema=False, tags=["staff pages"])
DRAFT_MAX = 100_000  # characters of a pasted policy
LIVE_JOURNEYS_MAX = 5_000  # running journeys re-planned for the effect, the first by arrival


@router.get("/policy", response_class=HTMLResponse, name="staff_policy")
async def show_policy(page: OpsPageDep, services: ServicesDep) -> Response:
    """The policy in force for each hotel, and the form to try a draft."""
    _admin_only(page)
    return page.render("policy.html", await _context(page, services))


@router.post("/policy", response_class=HTMLResponse, name="staff_policy_try")
async def try_draft(request: Request, page: OpsPageDep, services: ServicesDep) -> Response:
    """A draft tried against a sample or a running journey, and against every running journey."""
    _admin_only(page)
    form = await read_form(request)
    check_csrf(request, page.settings, page.caller, str(form.get(CSRF_FIELD) or ""))
    context = await _context(page, services)
    draft_text = str(form.get("draft") or "")
    hotel_id = str(form.get("hotel_id") or "")[:64] or None
    reservation_id = str(form.get("reservation_id") or "").strip()[:128] or None
    context.update(draft=draft_text, hotel_id=hotel_id or "", reservation_id=reservation_id or "")
    if len(draft_text) > DRAFT_MAX:
        context["problems"] = [f"o rascunho tem {len(draft_text)} caracteres; o limite é {DRAFT_MAX}"]
        return page.render("policy.html", context, 422)
    checked = check_policy_text(draft_text, source="rascunho")
    if not checked.valid or checked.policy is None:
        context["problems"] = [_problem(problem.line, problem.where, problem.message) for problem in checked.problems]
        return page.render("policy.html", context, 422)
    current, draft, principal, now = services.policy, checked.policy, page.principal, utcnow()
    async with services.sessions() as session:
        if reservation_id:
            found = await read_model_queries.running_journeys(
                session=session, hotels=principal.hotels, limit=1, reservation_id=reservation_id)
            if not found:
                context["try_error"] = f"nenhuma jornada em andamento com a reserva {reservation_id!r}"
                return page.render("policy.html", context, 404)
            reservation, facts = journey_facts(found[0])
        else:
            hotel = hotel_id or (context["hotels"][0] if context["hotels"] else None)
            if hotel is not None:
                principal.check_hotel(hotel)
            reservation, facts = sample_reservation(current, now, hotel), None
        running = await read_model_queries.running_journeys(
            session=session, hotels=principal.hotels, limit=LIVE_JOURNEYS_MAX)
    context.update(
        tried=reservation, tried_running=facts is not None,
        rows=compare_schedules(current, draft, reservation, now, facts),
        effect=live_effect(current, draft, running, now), capped=len(running) >= LIVE_JOURNEYS_MAX,
    )
    return page.render("policy.html", context)


def _admin_only(page: StaffPage) -> None:
    if page.principal.role != "admin":
        raise HTTPException(403, f"a página da política exige o papel admin; sua chave tem {page.principal.role}")


async def _context(page: StaffPage, services: Any) -> dict[str, Any]:
    policy: JourneyPolicy = services.policy
    principal = page.principal
    async with services.sessions() as session:
        known = await dashboard.known_hotels(session=session, configured=list(policy.hotels))
    hotels = [hotel for hotel in known if principal.may_see(hotel)]
    return {
        "current": "policy", "title": "Política da jornada", "labels": labels,
        "policy_file": str(services.settings.policy_file) if services.settings.policy_file else None,
        "hotels": hotels, "in_force": [(hotel, _as_yaml(policy, hotel)) for hotel in hotels],
        "defaults": _as_yaml(policy, None) if not principal.scoped else None,
        "draft": "", "hotel_id": "", "reservation_id": "", "problems": None, "try_error": None,
        "rows": None, "effect": None, "tried": None, "tried_running": False, "capped": False,
        "live_max": LIVE_JOURNEYS_MAX,
    }


def _as_yaml(policy: JourneyPolicy, hotel_id: str | None) -> str:
    """A hotel's policy as it is in force (its overrides merged over the defaults), as YAML."""
    effective = policy.for_hotel(hotel_id) if hotel_id is not None else policy
    data = effective.model_dump(mode="json", exclude={"hotels"} if hotel_id is None else None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _problem(line: int | None, where: str, message: str) -> str:
    place = f"linha {line}" if line is not None else "arquivo"
    return f"{place}: {where}: {message}" if where else f"{place}: {message}"
