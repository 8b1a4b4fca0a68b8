"""Signing in and out of the staff pages, for browsers: `/login` and `/logout`.

A browser signs in at `/login` with its API key and keeps a session cookie
(`api.staff.session`); a script may send the same `Authorization: Bearer` key
instead and never needs these pages.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import ServicesDep, SettingsDep
from api.staff.route import LOGIN_PATH, PANEL_PATH, StaffPage, StaffPageDep, StaffRoute
from api.staff.session import (
    StaffCaller,
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
from guest_journey.settings import Settings

logger = logging.getLogger(__name__)
router = APIRouter(route_class=StaffRoute, include_in_schema=False, tags=["staff pages"])


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


def _signed_out(settings: Settings) -> Response:
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    clear_session_cookie(response, settings)
    return response
