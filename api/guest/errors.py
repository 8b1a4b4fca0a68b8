"""What a guest sees when something is wrong: a friendly page in their
language with the right status, never a stack trace or a JSON error.

`GuestRoute` is the route class of every guest page: it turns the page's own
errors (`GuestPageError`), the API's domain errors and any unexpected failure
into such a page, and gives every answer the headers a page with personal
data and a secret link in its address needs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from temporalio.service import RPCError

from api.i18n import CATALOGUES, Translator
from api.limits import BodyTooLarge
from api.pages import render_page
from guest_journey.languages import choose_language, from_accept_language
from services.errors import Conflict, DomainError, NotFound, OfferNotOffered, Unavailable

logger = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    # The link in the address bar is the guest's key: never send it elsewhere.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


OFFER_NOT_OFFERED_BODY = "error.offer_unknown.not_offered"


class GuestPageError(Exception):
    """A page that cannot be shown; `kind` names the words (`error.<kind>.*`)."""

    def __init__(
        self, status_code: int, kind: str, *, language: str | None = None, detail: str | None = None
    ) -> None:
        super().__init__(kind)
        self.status_code = status_code
        self.kind = kind
        self.language = language
        self.detail = detail


def error_page(request: Request, error: GuestPageError) -> Response:
    language = choose_language(
        error.language,
        request.query_params.get("lang"),
        request.cookies.get("guest_lang"),
        from_accept_language(request.headers.get("accept-language")),
    )
    tr = Translator(language)
    query = {key: value for key, value in request.query_params.items() if key != "lang"}
    languages = [
        {"code": code, "name": messages["language.name"], "current": code == tr.language,
         "url": f"{request.url.path}?{urlencode({**query, 'lang': code})}"}
        for code, messages in CATALOGUES.items()
    ]
    context: dict[str, Any] = {
        "t": tr.t,
        "lang": tr.language,
        "languages": languages,
        "title": tr.t(f"error.{error.kind}.title"),
        "body": tr.t(error.detail or f"error.{error.kind}.body"),
        "kind": error.kind,
        "back": error.kind in ("csrf", "too_large", "bad_form", "unavailable", "unexpected", "too_many"),
        "back_url": f"{request.url.path}?{urlencode({**query, 'lang': tr.language})}",
    }
    return render_page("guest/error.html", context, error.status_code)


def _from_domain(error: DomainError) -> GuestPageError:
    if isinstance(error, NotFound):
        return GuestPageError(404, "not_found")
    if isinstance(error, OfferNotOffered):
        return GuestPageError(409, "offer_unknown", detail=OFFER_NOT_OFFERED_BODY)
    if isinstance(error, Conflict):
        return GuestPageError(410, "closed", detail="error.closed.completed")
    if isinstance(error, Unavailable):
        return GuestPageError(503, "unavailable")
    return GuestPageError(422, "bad_form")


class GuestRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        page = self.name

        async def guarded(request: Request) -> Response:
            try:
                response = await handle(request)
            except GuestPageError as error:
                response = error_page(request, error)
            except BodyTooLarge:
                response = error_page(request, GuestPageError(413, "too_large"))
            except RequestValidationError:
                response = error_page(request, GuestPageError(403, "invalid"))
            except DomainError as error:
                response = error_page(request, _from_domain(error))
            except (RPCError, OperationalError, PoolTimeoutError) as error:
                logger.warning("guest page could not reach a dependency",
                               extra={"page": page, "error": type(error).__name__})
                response = error_page(request, GuestPageError(503, "unavailable"))
            except Exception:
                logger.exception("guest page failed", extra={"page": page})
                response = error_page(request, GuestPageError(500, "unexpected"))
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return guarded
