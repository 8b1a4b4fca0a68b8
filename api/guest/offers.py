"""`/guest/{token}/offers/{offer}`: an upsell offer, accepted or declined once.

The e-mail's accept and decline links (`?answer=accept|decline`) open this
page with that answer ready to confirm: a GET never answers, so that a mail
scanner following links cannot answer for the guest. The answer goes to the
journey (`answer_offer`), which stops that offer's follow-ups and counts it
for upsell conversion.

A link opens only the offer signed into it, and only once the journey has
offered it to this guest (its upsell is `offered`, or answered): any other
offer is the "not available" page. The journey's `answer_offer` validator
holds the same rule for the answer itself, so a race or a direct call cannot
pass it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.guest.errors import OFFER_NOT_OFFERED_BODY, GuestPageError, GuestRoute
from api.guest.forms import new_request_id, read_form
from api.guest.visit import CSRF_FIELD, OfferVisit, Visit
from guest_journey.journeys import Stage, Upsell, UpsellStatus
from guest_journey.policy import UpsellOffer
from services.errors import OfferNotOffered
from services.journey_service import update_journey
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import OfferAnswer

router = APIRouter(route_class=GuestRoute)
ANSWERS = ("accept", "decline")
ANSWERED = (UpsellStatus.accepted, UpsellStatus.declined)
OPEN_TO_THE_GUEST = (UpsellStatus.offered, *ANSWERED)


def _not_offered(visit: Visit, status_code: int = 404) -> GuestPageError:
    return GuestPageError(status_code, "offer_unknown", language=visit.tr.language, detail=OFFER_NOT_OFFERED_BODY)


def _offer(visit: Visit, name: str) -> UpsellOffer:
    """The offer of this page: the link's own, and one the journey offered this guest."""
    if visit.link_offer is not None and visit.link_offer != name:
        raise _not_offered(visit)
    offer = visit.policy.offer(name)
    if offer is None:
        raise GuestPageError(404, "offer_unknown", language=visit.tr.language)
    upsell = _upsell(visit, name)
    if upsell is None or upsell.status not in OPEN_TO_THE_GUEST:
        raise _not_offered(visit)
    return offer


def _upsell(visit: Visit, name: str) -> Upsell | None:
    return next((upsell for upsell in visit.journey.upsells if upsell.offer == name), None)


def offer_expired(offer: UpsellOffer, stage: Stage) -> bool:
    """Past its window: before arrival offers end at arrival, the others at departure."""
    if offer.before_arrival:
        return stage is not Stage.pre_arrival
    return stage not in (Stage.pre_arrival, Stage.in_stay)


def _render(visit: Visit, offer: UpsellOffer, *, chosen: str | None = None, error: str | None = None,
            notice: str | None = None, request_id: str | None = None, status_code: int = 200) -> HTMLResponse:
    tr = visit.tr
    upsell = _upsell(visit, offer.offer)
    answered = upsell is not None and upsell.status in ANSWERED
    outcome = None
    if upsell is not None and answered:
        key = "offer.accepted" if upsell.status is UpsellStatus.accepted else "offer.declined"
        outcome = tr.t(key, date=tr.date(upsell.answered_at, "long") if upsell.answered_at else "")
    expired = not answered and offer_expired(offer, visit.journey.stage)
    title = tr.offer_title(offer.offer)
    context: dict[str, Any] = {
        "title": title,
        "heading": tr.t("offer.title"),
        "offer_title": title,
        "description": tr.offer_description(offer.offer),
        "price": tr.money(offer.price, offer.currency),
        "answered": answered,
        "accepted": upsell is not None and upsell.status is UpsellStatus.accepted,
        "outcome": outcome,
        "expired": expired,
        "notice": notice,
        "chosen": chosen if chosen in ANSWERS else None,
        "error": error,
        "request_id": request_id or new_request_id(),
        "action": visit.path(f"offers/{offer.offer}"),
    }
    return visit.render("guest/offer.html", status_code, **context)


@router.get("/{token}/offers/{offer}", response_class=HTMLResponse, name="guest_offer")
async def show_offer(visit: OfferVisit, offer: str, answer: str | None = None) -> Response:
    found = _offer(visit, offer)
    upsell = _upsell(visit, offer)
    answered = upsell is not None and upsell.status in ANSWERED
    gone = not answered and offer_expired(found, visit.journey.stage)
    return _render(visit, found, chosen=answer, status_code=410 if gone else 200)


@router.post("/{token}/offers/{offer}", response_class=HTMLResponse, name="guest_offer_answer")
async def answer_offer(request: Request, visit: OfferVisit, offer: str) -> Response:
    form = await read_form(request, visit.tr.language)
    visit.check_csrf(form.get(CSRF_FIELD))
    found = _offer(visit, offer)
    upsell = _upsell(visit, offer)
    if upsell is not None and upsell.status in ANSWERED:
        return _render(visit, found, notice=visit.tr.t("offer.already"), status_code=409)
    if offer_expired(found, visit.journey.stage):
        return _render(visit, found, status_code=410)
    answer = form.get("answer")
    if answer not in ANSWERS:
        return _render(visit, found, error=visit.tr.t("offer.answer.required"),
                       request_id=form.request_id(), status_code=422)
    try:
        await update_journey(
            client=visit.services.temporal, session=visit.session, reservation_id=visit.reservation_id,
            update=GuestJourneyWorkflow.answer_offer,
            argument=OfferAnswer(request_id=f"guest-offer-{form.request_id()}", offer=offer,
                                 accepted=answer == "accept"),
        )
    except OfferNotOffered:
        raise _not_offered(visit, 409) from None
    target = visit.path(f"offers/{offer}") + f"?lang={visit.tr.language}"
    response = RedirectResponse(target, status_code=303)
    visit.set_cookies(response)
    return response
