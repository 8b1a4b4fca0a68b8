"""One guest's visit to a page: the link read, the journey found, the language
chosen, and what every page needs to render (CSRF token, language switch,
cookies).

A link names one reservation and one purpose (`guest_journey.guest_links`);
the reservation is always the token's, never one named by the request.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Path, Request
from fastapi.responses import HTMLResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import Services, ServicesDep, SessionDep
from api.guest.errors import GuestPageError
from api.hosts import origin_allowed
from api.i18n import CATALOGUES, Translator
from api.pages import render_page
from guest_journey import signing
from guest_journey.guest_links import (
    FEEDBACK_VALID_AFTER_DEPARTURE,
    ExpiredGuestToken,
    GuestTokenError,
    Purpose,
    make_token,
    read_token,
)
from guest_journey.journeys import JourneyView
from guest_journey.languages import choose_language, from_accept_language, supported_language
from guest_journey.policy import HotelPolicy
from services.errors import DomainError
from services.journey_service import read_journey

LANG_COOKIE = "guest_lang"
CSRF_COOKIE = "guest_csrf"
CSRF_FIELD = "csrf_token"
COOKIE_PATH = "/guest"
MAX_TOKEN_LENGTH = 512
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TokenPath = Annotated[str, Path(max_length=MAX_TOKEN_LENGTH, description="the signed guest link")]


def request_language(request: Request, guest_language: str | None = None) -> str:
    """`?lang=`, then the language cookie, then the guest's, then the browser's, then
    English; each one answered as messages are (`guest_journey.languages`)."""
    return choose_language(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        guest_language,
        from_accept_language(request.headers.get("accept-language")),
    )


def csrf_token(secret: str, seed: str, token: str) -> str:
    return signing.sign(signing.Purpose.GUEST_CSRF, secret, f"{seed}:{token}")


def guest_path(token: str, page: str) -> str:
    return f"/guest/{token}/{page}"


@dataclass
class Visit:
    request: Request
    services: Services
    session: AsyncSession
    token: str
    purpose: Purpose
    journey: JourneyView
    policy: HotelPolicy
    tr: Translator
    secret: str
    csrf_seed: str
    new_csrf_seed: bool
    cookies: dict[str, str] = field(default_factory=dict)
    link_offer: str | None = None  # the offer an offer link is signed for (None: a link made before)

    @property
    def reservation_id(self) -> str:
        return self.journey.reservation_id

    def path(self, page: str) -> str:
        return guest_path(self.token, page)

    def chat_path(self) -> str:
        expires = self.journey.departure + FEEDBACK_VALID_AFTER_DEPARTURE
        return guest_path(make_token(self.secret, self.reservation_id, Purpose.chat, expires), "chat")

    def check_csrf(self, sent: str | None) -> None:
        """The form's token must match the browser's cookie; an Origin other than the public
        base URL's (`api.hosts.origin_allowed`) is refused."""
        origin = self.request.headers.get("origin")
        if origin and origin != "null" and not origin_allowed(self.services.settings.public_base_url, origin):
            raise GuestPageError(403, "csrf", language=self.tr.language)
        keys = self.services.settings.verification_secret_keys()  # a page loaded before a rotation still posts
        matched = signing.verify(signing.Purpose.GUEST_CSRF, keys, f"{self.csrf_seed}:{self.token}", sent or "")
        if self.new_csrf_seed or not sent or not matched:
            raise GuestPageError(403, "csrf", language=self.tr.language)

    def page_context(self) -> dict[str, Any]:
        tr, journey = self.tr, self.journey
        return {
            "t": tr.t,
            "tr": tr,
            "lang": tr.language,
            "languages": language_links(self.request, tr.language),
            "guest_name": journey.guest.name,
            "first_name": (journey.guest.name.split() or [journey.guest.name])[0],
            "stay": tr.t(
                "page.stay",
                reservation=journey.reservation_id,
                arrival=tr.date(journey.arrival, "medium"),
                departure=tr.date(journey.departure, "medium"),
            ),
            "chat_path": None if self.purpose is Purpose.chat else self.chat_path(),
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token(self.secret, self.csrf_seed, self.token),
            "action_query": "?" + urlencode({"lang": tr.language}),
        }

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        response = render_page(template, {**self.page_context(), **context}, status_code)
        self.set_cookies(response)
        return response

    def set_cookies(self, response: Any) -> None:
        secure = self.request.url.scheme == "https"
        if supported_language(self.request.query_params.get("lang")) == self.tr.language:
            response.set_cookie(LANG_COOKIE, self.tr.language, max_age=365 * 86400, path=COOKIE_PATH,
                                samesite="lax", secure=secure, httponly=True)
        if self.new_csrf_seed:
            response.set_cookie(CSRF_COOKIE, self.csrf_seed, path=COOKIE_PATH, samesite="lax",
                                secure=secure, httponly=True)


def language_links(request: Request, current: str) -> list[dict[str, Any]]:
    """The language switch: this page in each language."""
    links = []
    for code, messages in CATALOGUES.items():
        query = {key: value for key, value in request.query_params.items() if key != "lang"}
        query["lang"] = code
        links.append({"code": code, "name": messages["language.name"], "current": code == current,
                      "url": f"{request.url.path}?{urlencode(query)}"})
    return links


async def load_visit(
    request: Request, services: Services, session: AsyncSession, token: str, purpose: Purpose
) -> Visit:
    secret = services.settings.resolved_secret_key()
    try:
        parsed = read_token(services.settings.verification_secret_keys(), token, purpose)
    except ExpiredGuestToken:
        language = await _language_of_expired(services, session, token, purpose)
        raise GuestPageError(410, "expired", language=request_language(request, language)) from None
    except GuestTokenError:
        raise GuestPageError(403, "invalid") from None
    journey = await read_journey(client=services.temporal, session=session, reservation_id=parsed.reservation_id)
    policy = services.policy.for_hotel(journey.hotel_id)
    seed = request.cookies.get(CSRF_COOKIE)
    return Visit(
        request=request,
        services=services,
        session=session,
        token=token,
        purpose=purpose,
        journey=journey,
        policy=policy,
        tr=Translator(request_language(request, journey.guest.language), policy.hotel_timezone),
        secret=secret,
        csrf_seed=seed if seed and len(seed) <= 64 else secrets.token_urlsafe(18),
        new_csrf_seed=not seed or len(seed) > 64,
        link_offer=parsed.offer,
    )


async def _language_of_expired(
    services: Services, session: AsyncSession, token: str, purpose: Purpose
) -> str | None:
    """The guest's language for the page that says their (genuine) link expired."""
    try:
        parsed = read_token(services.settings.verification_secret_keys(), token, purpose, now=_EPOCH)
        journey = await read_journey(client=services.temporal, session=session, reservation_id=parsed.reservation_id)
    except (GuestTokenError, DomainError):
        return None
    return journey.guest.language


def visit_for(purpose: Purpose) -> Callable[..., Awaitable[Visit]]:
    async def visit(request: Request, token: TokenPath, services: ServicesDep, session: SessionDep) -> Visit:
        return await load_visit(request, services, session, token, purpose)

    return visit


CheckinVisit = Annotated[Visit, Depends(visit_for(Purpose.checkin))]
OfferVisit = Annotated[Visit, Depends(visit_for(Purpose.offer))]
FeedbackVisit = Annotated[Visit, Depends(visit_for(Purpose.feedback))]
ChatVisit = Annotated[Visit, Depends(visit_for(Purpose.chat))]
