"""`/guest/{token}/check-in`: the digital check-in form and its confirmation.

Submitting completes the journey's check-in step through the workflow
(`complete_checkin`), which skips the pending reminders and merges the
preferences; a later submission updates the same check-in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.guest.checkin_form import (
    ACCESSIBILITY,
    BEDS,
    DIETARY,
    DOCUMENT_TYPES,
    LIMITS,
    PILLOWS,
    CheckinForm,
    blank_values,
    masked_tail,
    parse_checkin,
    submission,
    values_from_journey,
)
from api.guest.errors import GuestPageError, GuestRoute
from api.guest.forms import new_request_id, read_form
from api.guest.visit import CSRF_FIELD, CheckinVisit, Visit
from guest_journey.journeys import CheckinStatus, Stage
from services.journey_service import update_journey
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import CheckinSubmission

router = APIRouter(route_class=GuestRoute)
OPEN_STAGES = (Stage.pre_arrival, Stage.in_stay)
LABELS = {
    "eta": "checkin.eta", "document_type": "checkin.document_type", "document_number": "checkin.document_number",
    "nationality": "checkin.nationality", "date_of_birth": "checkin.date_of_birth",
    "address_line": "checkin.address_line", "city": "checkin.city", "postal_code": "checkin.postal_code",
    "country": "checkin.country", "bed": "checkin.bed", "pillow": "checkin.pillow", "dietary": "checkin.dietary",
    "accessibility": "checkin.accessibility", "notes": "checkin.notes", "terms": "checkin.section.consent",
    "signature": "checkin.signature",
}


def _ensure_open(visit: Visit) -> None:
    stage = visit.journey.stage
    if stage in OPEN_STAGES:
        return
    detail = "error.closed.checkin" if stage is Stage.post_stay else f"error.closed.{stage.value}"
    raise GuestPageError(410, "closed", language=visit.tr.language, detail=detail)


def _document_on_file(visit: Visit) -> str | None:
    masked = visit.journey.checkin.details.get("document_number")
    return masked if isinstance(masked, str) and masked else None


def _render_form(visit: Visit, form: CheckinForm, request_id: str, status_code: int = 200) -> HTMLResponse:
    tr = visit.tr
    on_file = _document_on_file(visit)
    return visit.render(
        "guest/checkin.html",
        status_code,
        title=tr.t("checkin.title"),
        form=form,
        values=form.values,
        errors=form.errors,
        request_id=request_id,
        completed=visit.journey.checkin.status is CheckinStatus.completed,
        on_file_tail=masked_tail(on_file) if on_file else None,
        arrival_date=tr.date(visit.journey.arrival, "full"),
        zone=tr.zone_name(),
        countries=tr.countries(),
        document_types=DOCUMENT_TYPES,
        beds=BEDS,
        pillows=PILLOWS,
        dietary=DIETARY,
        accessibility=ACCESSIBILITY,
        limits=LIMITS,
        labels={name: tr.t(key) for name, key in LABELS.items()},
        action=visit.path("check-in"),
    )


@router.get("/{token}/check-in", response_class=HTMLResponse, name="guest_checkin")
async def show_checkin(visit: CheckinVisit) -> Response:
    _ensure_open(visit)
    checkin = visit.journey.checkin
    if checkin.status is CheckinStatus.completed:
        values = values_from_journey(checkin.details, visit.journey.preferences)
    else:  # the consent the guest gave at booking is kept unless they untick it here
        values = blank_values() | {"marketing": bool(visit.journey.guest.marketing_consent)}
    return _render_form(visit, CheckinForm(values=values), new_request_id())


@router.post("/{token}/check-in", response_class=HTMLResponse, name="guest_checkin_submit")
async def submit_checkin(request: Request, visit: CheckinVisit) -> Response:
    form_data = await read_form(request, visit.tr.language)
    visit.check_csrf(form_data.get(CSRF_FIELD))
    _ensure_open(visit)
    request_id = form_data.request_id()
    now = datetime.now(UTC)
    on_file = _document_on_file(visit)
    form = parse_checkin(form_data, visit.tr, today=visit.tr.local(now).date(), document_on_file=on_file)
    if not form.valid:
        form.values["document_number"] = ""
        return _render_form(visit, form, request_id, status_code=422)
    details, preferences = submission(
        form, visit.tr, arrival=visit.journey.arrival, now=now, document_on_file=on_file
    )
    await update_journey(
        client=visit.services.temporal, session=visit.session, reservation_id=visit.reservation_id,
        update=GuestJourneyWorkflow.complete_checkin,
        argument=CheckinSubmission(request_id=f"guest-checkin-{request_id}", details=details,
                                   preferences=preferences),
    )
    response = RedirectResponse(visit.path("check-in/done") + _lang_query(visit), status_code=303)
    visit.set_cookies(response)
    return response


@router.get("/{token}/check-in/done", response_class=HTMLResponse, name="guest_checkin_done")
async def show_checkin_done(visit: CheckinVisit) -> Response:
    checkin = visit.journey.checkin
    if checkin.status is not CheckinStatus.completed:
        return RedirectResponse(visit.path("check-in") + _lang_query(visit), status_code=303)
    tr, details = visit.tr, checkin.details
    summary: dict[str, Any] = {
        "arrival": tr.t("checkin.done.arrival", date=tr.date(visit.journey.arrival, "full"),
                        time=_eta_label(visit, details.get("estimated_arrival"))),
    }
    document = details.get("document_number")
    if isinstance(document, str) and document:
        kind = tr.t(f"checkin.document_type.{details.get('document_type')}")
        summary["document"] = tr.t("checkin.done.document", type=kind, last=masked_tail(document))
    return visit.render(
        "guest/checkin_done.html",
        title=tr.t("checkin.done.title"),
        summary=summary,
        edit_path=visit.path("check-in") + _lang_query(visit),
        open=visit.journey.stage in OPEN_STAGES,
    )


def _eta_label(visit: Visit, eta: object) -> str:
    if not isinstance(eta, str):
        return ""
    try:
        return visit.tr.time(datetime.strptime(eta, "%H:%M").time())
    except ValueError:
        return eta


def _lang_query(visit: Visit) -> str:
    return f"?lang={visit.tr.language}"
