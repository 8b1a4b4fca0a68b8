"""How a staff page answers: rendered with what every staff page needs, and
never as a JSON error or a stack trace.

`StaffRoute` is the route class of the staff pages. A browser that is not
signed in is sent to `/login` (back to the page afterwards); a script that
sent a wrong key gets 401 with `WWW-Authenticate`; a key without the `ops`
role gets 403; an unavailable Temporal or database a 503 page; anything
unexpected is logged and shown as a 500 page. Every answer carries a strict
Content-Security-Policy (scripts and styles only from `/static`) and is not
cached.

`StaffPageDep` is a page as anyone may see it (`/login`); `OpsPageDep` a page
for a signed-in caller (`api.staff.session.staff_caller`). `read_form` reads a
page's form, never a file nor more than `FORM_FIELDS` fields.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from api.access import Principal
from api.deps import SettingsDep
from api.limits import BodyTooLarge
from api.pages import render_page
from api.staff.session import CSRF_FIELD, Csrf, StaffCaller, StaffCallerDep, csrf_for
from guest_journey.settings import Settings
from services.errors import DomainError, Unavailable

logger = logging.getLogger(__name__)

LOGIN_PATH = "/login"
PANEL_PATH = "/guest-experience"
FORM_FIELDS = 40
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
NAV = (("panel", PANEL_PATH, "Painel"), ("inbox", "/inbox", "Caixa de entrada"), ("analytics", "/analytics", "Analytics"))
ADMIN_NAV = (("policy", "/policy", "Política"),)  # shown to the role admin


@dataclass
class StaffPage:
    """One rendering of a staff page: the caller, and this browser's CSRF token."""

    request: Request
    settings: Settings
    csrf: Csrf
    caller: StaffCaller | None = None

    @property
    def principal(self) -> Principal:
        """The caller's role and hotels (`api.access`); a page without a caller shows none."""
        if self.caller is None:
            return Principal(role="ops", hotels=frozenset())
        return self.caller.principal

    def render(self, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
        page = {
            "caller": self.caller,
            "csrf_field": CSRF_FIELD,
            "csrf_token": self.csrf.token,
            "nav": NAV + ADMIN_NAV if self.caller is not None and self.caller.role == "admin" else NAV,
            "current": context.pop("current", None),
            **context,
        }
        response = render_page(f"staff/{template}", page, status_code)
        self.csrf.attach(response, self.settings)
        return response


async def staff_page(request: Request, settings: SettingsDep) -> StaffPage:
    return StaffPage(request=request, settings=settings, csrf=csrf_for(request, settings))


StaffPageDep = Annotated[StaffPage, Depends(staff_page)]


async def ops_page(page: StaffPageDep, caller: StaffCallerDep) -> StaffPage:
    """The page with its caller: a session or a key whose role may use the staff pages (else 401 or 403)."""
    page.caller = caller
    return page


OpsPageDep = Annotated[StaffPage, Depends(ops_page)]


async def read_form(request: Request) -> FormData:
    """The page's form (URL-encoded, or multipart without files); any other body is 415."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise HTTPException(415, "send the page's form (application/x-www-form-urlencoded)")
    return await request.form(max_files=0, max_fields=FORM_FIELDS)


def login_redirect(request: Request) -> RedirectResponse:
    """To `/login`, and back to the page (a GET) or to the panel afterwards."""
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += f"?{request.url.query}"
    elif request.method != "GET":
        target = PANEL_PATH
    return RedirectResponse(f"{LOGIN_PATH}?{urlencode({'next': target}, quote_via=quote)}", status_code=303)


def _wants_page(request: Request) -> bool:
    return "authorization" not in request.headers and (
        request.method != "GET" or "text/html" in request.headers.get("accept", "text/html")
    )


def error_page(request: Request, status_code: int, title: str, detail: str) -> HTMLResponse:
    context: dict[str, Any] = {
        "caller": None, "nav": NAV, "current": None, "csrf_field": CSRF_FIELD, "csrf_token": "",
        "title": title, "detail": detail, "status_code": status_code,
        "login_url": f"{LOGIN_PATH}?{urlencode({'next': request.url.path}, quote_via=quote)}",
    }
    return render_page("staff/error.html", context, status_code)


def _from_http(request: Request, error: StarletteHTTPException) -> Response:
    if error.status_code == 401:
        if _wants_page(request):
            return login_redirect(request)
        response = error_page(request, 401, "Identifique-se", str(error.detail))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    if error.status_code == 403:
        return error_page(request, 403, "Acesso negado", str(error.detail))
    return error_page(request, error.status_code, "Não foi possível atender", str(error.detail))


class StaffRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        page = self.name

        async def guarded(request: Request) -> Response:
            try:
                response = await handle(request)
            except StarletteHTTPException as error:
                if isinstance(error.__cause__, BodyTooLarge):  # FastAPI's 400 for a form it could not read
                    response = error_page(request, 413, "Formulário grande demais", "envie um texto mais curto")
                else:
                    response = _from_http(request, error)
            except RequestValidationError as error:
                fields = ", ".join(".".join(str(part) for part in item["loc"][1:]) or "?" for item in error.errors())
                response = error_page(request, 422, "Pedido inválido", f"confira: {fields}")
            except BodyTooLarge:
                response = error_page(request, 413, "Formulário grande demais", "envie um texto mais curto")
            except Unavailable as error:
                response = error_page(request, 503, "Serviço indisponível", error.detail)
            except DomainError as error:
                response = error_page(request, error.status_code, "Não foi possível atender", error.detail)
            except (RPCError, OperationalError, PoolTimeoutError) as error:
                logger.warning("staff page could not reach a dependency",
                               extra={"page": page, "error": type(error).__name__})
                response = error_page(request, 503, "Serviço indisponível",
                                      "o Temporal ou o banco de dados não responderam; tente de novo em instantes")
            except Exception:
                logger.exception("staff page failed", extra={"page": page})
                response = error_page(request, 500, "Erro inesperado",
                                      "o erro foi registrado no log; tente de novo")
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return guarded
