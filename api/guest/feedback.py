"""`/guest/{token}/feedback`: satisfaction (0-10), NPS (0-10) and a comment, sent to the journey once.

Every guest who answers sees the hotel's public review link when the hotel
has one (nobody is filtered out by their score); a promoter (9-10) is asked
for a review in so many words. A detractor (0-6) opens a follow-up for staff
(`services.guest_feedback`): their answer becomes an inbound message in the
reservation's web chat conversation, which the operations view lists and staff
answer from there.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.guest.errors import GuestPageError, GuestRoute
from api.guest.forms import new_request_id, read_form
from api.guest.visit import CSRF_FIELD, FeedbackVisit, Visit
from guest_journey.journeys import FeedbackStatus, Stage
from guest_journey.kpis import DETRACTOR_MAX, PROMOTER_MIN
from services.guest_feedback import record_feedback

router = APIRouter(route_class=GuestRoute)

COMMENT_LIMIT = 2000
SCORES = tuple(range(11))


async def public_review_url(visit: FeedbackVisit) -> str | None:
    """The hotel's public review page, from its policy (`public_review_url`), if any."""
    return visit.policy.public_review_url


ReviewUrl = Annotated[str | None, Depends(public_review_url)]


def _ensure_open(visit: Visit) -> None:
    stage = visit.journey.stage
    if stage is Stage.pre_arrival:
        raise GuestPageError(409, "feedback_early", language=visit.tr.language)
    if stage in (Stage.cancelled, Stage.no_show):
        raise GuestPageError(410, "closed", language=visit.tr.language, detail=f"error.closed.{stage.value}")


def _render_form(visit: Visit, *, score: str = "", satisfaction: str = "", comment: str = "",
                 errors: dict[str, str] | None = None, request_id: str | None = None,
                 status_code: int = 200) -> HTMLResponse:
    return visit.render(
        "guest/feedback.html", status_code,
        title=visit.tr.t("feedback.title"), score=score, satisfaction=satisfaction, comment=comment,
        errors=errors or {}, scores=SCORES, limit=COMMENT_LIMIT,
        labels={"satisfaction": visit.tr.t("feedback.satisfaction"), "score": visit.tr.t("feedback.score"),
                "comment": visit.tr.t("feedback.comment")},
        request_id=request_id or new_request_id(),
        action=visit.path("feedback"),
    )


def _render_thanks(visit: Visit, review_url: str | None, status_code: int = 200,
                   notice: str | None = None) -> HTMLResponse:
    score = visit.journey.feedback.score
    if score is None or score > DETRACTOR_MAX:
        tone = "promoter" if score is not None and score >= PROMOTER_MIN else "passive"
    else:
        tone = "detractor"
    return visit.render(
        "guest/feedback_thanks.html", status_code,
        title=visit.tr.t("feedback.thanks.title"), tone=tone, score=score, review_url=review_url,
        notice=notice,
    )


@router.get("/{token}/feedback", response_class=HTMLResponse, name="guest_feedback")
async def show_feedback(visit: FeedbackVisit, review_url: ReviewUrl) -> Response:
    if visit.journey.feedback.status is FeedbackStatus.received:
        return _render_thanks(visit, review_url)
    _ensure_open(visit)
    if visit.journey.stage is Stage.completed:
        raise GuestPageError(410, "closed", language=visit.tr.language, detail="error.closed.completed")
    return _render_form(visit)


@router.post("/{token}/feedback", response_class=HTMLResponse, name="guest_feedback_submit")
async def submit_feedback(request: Request, visit: FeedbackVisit, review_url: ReviewUrl) -> Response:
    form = await read_form(request, visit.tr.language)
    visit.check_csrf(form.get(CSRF_FIELD))
    if visit.journey.feedback.status is FeedbackStatus.received:
        return _render_thanks(visit, review_url, 409, notice=visit.tr.t("feedback.already"))
    _ensure_open(visit)
    score_text, comment = form.get("score"), form.get("comment")
    satisfaction_text = form.get("satisfaction")
    errors = {}
    if satisfaction_text not in {str(score) for score in SCORES}:
        errors["satisfaction"] = visit.tr.t("feedback.satisfaction.required")
    if score_text not in {str(score) for score in SCORES}:
        errors["score"] = visit.tr.t("feedback.score.required")
    if len(comment) > COMMENT_LIMIT:
        errors["comment"] = visit.tr.t("form.too_long", max=COMMENT_LIMIT)
    if errors:
        return _render_form(visit, score=score_text, satisfaction=satisfaction_text, comment=comment,
                            errors=errors, request_id=form.request_id(), status_code=422)
    await record_feedback(
        session=visit.session, client=visit.services.temporal, reservation_id=visit.reservation_id,
        request_id=f"guest-feedback-{form.request_id()}", score=int(score_text),
        satisfaction=int(satisfaction_text), comment=comment or None,
    )
    response = RedirectResponse(visit.path("feedback") + f"?lang={visit.tr.language}", status_code=303)
    visit.set_cookies(response)
    return response
