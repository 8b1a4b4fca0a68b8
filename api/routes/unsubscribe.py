"""One-click unsubscribe from offers (RFC 8058), from the link in marketing e-mails."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.deps import SessionDep, SettingsDep
from api.error_responses import guest_rate_limited, json_errors_inline, page_errors
from communications.unsubscribes import unsubscribe
from guest_journey.guest_links import ExpiredGuestToken, GuestTokenError, Purpose, read_token
from guest_journey.read_model import get_journey

router = APIRouter(prefix="/guest", tags=["guest pages"])

_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>
<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem">
<h1 style="font-size:1.3rem">{title}</h1><p>{text}</p>{form}</body></html>"""
_FORM = """<form method="post"><button type="submit">Unsubscribe / Cancelar inscrição / Darse de baja</button></form>"""
LINK_ERRORS = {**page_errors(403, 410, why={403: "the link is not valid", 410: "the link has expired"}),
               **guest_rate_limited()}


def _page(status: int, title: str, text: str, form: str = "") -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=title, text=text, form=form), status_code=status)


@router.get("/{token}/unsubscribe", response_class=HTMLResponse, responses=LINK_ERRORS)
async def confirm_unsubscribe(token: str, settings: SettingsDep) -> HTMLResponse:
    """A page with one button: mail clients must never unsubscribe by merely opening a link."""
    try:
        read_token(settings.verification_secret_keys(), token, Purpose.unsubscribe)
    except GuestTokenError as error:
        return _page(410 if isinstance(error, ExpiredGuestToken) else 403, "Link", str(error))
    return _page(200, "Offers", "Stop receiving offers from the hotel? Messages about your stay continue.", _FORM)


@router.post("/{token}/unsubscribe", response_class=HTMLResponse, responses={**LINK_ERRORS, **json_errors_inline(503)})
async def one_click_unsubscribe(token: str, settings: SettingsDep, session: SessionDep) -> HTMLResponse:
    try:
        parsed = read_token(settings.verification_secret_keys(), token, Purpose.unsubscribe)
    except GuestTokenError as error:
        return _page(410 if isinstance(error, ExpiredGuestToken) else 403, "Link", str(error))
    journey = await get_journey(session=session, reservation_id=parsed.reservation_id)
    if journey is not None:
        for address in (journey.guest.email, journey.guest.phone):
            if address:
                await unsubscribe(session=session, address=address, reservation_id=parsed.reservation_id)
    return _page(200, "Done", "You will receive no more offers. Messages about your stay continue.")
