"""Staff sign-in: a signed session cookie carrying the role of an API key,
and the CSRF token of the staff forms.

`/login` takes an API key (CONTRACT §1). When the key's role may use the
staff pages (`ops` or `admin`), the browser gets the cookie `gj_staff`:
`<payload>.<signature>`, the payload naming the role, a fingerprint of the
key (an HMAC of it, never the key) and the expiry, signed with HMAC-SHA256
under the service's secret key in a domain of its own (`staff-session:`), so
that no guest link can pass for it nor it for one. The cookie is HttpOnly,
SameSite=Lax, and Secure when the public base URL is https.

On every request the fingerprint must still name a configured key, and the
role is that key's role now: taking a key out of `GUEST_JOURNEY_API_KEYS`
signs out every browser that signed in with it.

`staff_caller` is the pages' dependency: the `Authorization: Bearer` key
when the request sends one (a script), else the session cookie, else
`api.deps.caller_role` (which lets loopback callers in when no API keys are
configured, in development, and answers 401 otherwise).

Every staff form carries `csrf_token`, an HMAC of the random `gj_staff_csrf`
cookie (SameSite=Strict). A request authenticated by its `Authorization`
header sends no ambient credential and needs no token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, Response

from api.deps import SettingsDep, caller_role
from guest_journey.settings import ROLES, Role, Settings

SESSION_COOKIE = "gj_staff"
CSRF_COOKIE = "gj_staff_csrf"
CSRF_FIELD = "csrf_token"
SESSION_LIFETIME = timedelta(hours=12)
STAFF_ROLES: tuple[Role, ...] = ("ops", "admin")
_SESSION_DOMAIN = "staff-session:"
_KEY_DOMAIN = "staff-key:"
_CSRF_DOMAIN = "staff-csrf:"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, domain: str, text: str, size: int = 32) -> str:
    return _b64(hmac.new(secret.encode(), (domain + text).encode(), hashlib.sha256).digest()[:size])


def key_fingerprint(secret: str, key: str) -> str:
    return _mac(secret, _KEY_DOMAIN, key, 18)


@dataclass(frozen=True)
class StaffSession:
    role: Role
    fingerprint: str
    expires_at: datetime


def make_session_cookie(secret: str, role: Role, key: str, now: datetime | None = None) -> str:
    expires = (now or datetime.now(UTC)) + SESSION_LIFETIME
    body = {"r": role, "f": key_fingerprint(secret, key), "e": int(expires.timestamp())}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, _SESSION_DOMAIN, payload)}"


def read_session_cookie(secret: str, value: str, now: datetime | None = None) -> StaffSession | None:
    """The session a cookie carries, when it is ours, intact and not expired."""
    payload, _, signature = value.partition(".")
    if not payload or not signature or len(value) > 512:
        return None
    if not hmac.compare_digest(signature.encode(), _mac(secret, _SESSION_DOMAIN, payload).encode()):
        return None
    try:
        body = json.loads(_unb64(payload))
        role, fingerprint = body["r"], body["f"]
        expires_at = datetime.fromtimestamp(int(body["e"]), UTC)
    except (ValueError, KeyError, TypeError):
        return None
    if role not in ROLES or not isinstance(fingerprint, str):
        return None
    if expires_at <= (now or datetime.now(UTC)):
        return None
    return StaffSession(role=role, fingerprint=fingerprint, expires_at=expires_at)


def session_role(settings: Settings, session: StaffSession) -> Role | None:
    """The current role of the key the session was opened with; None once the key is gone."""
    secret = settings.resolved_secret_key()
    for key, role in settings.api_key_roles.items():
        if hmac.compare_digest(key_fingerprint(secret, key), session.fingerprint):
            return role
    return None


def key_role(settings: Settings, key: str) -> Role | None:
    """The role of an API key, compared in constant time; None when unknown."""
    found: Role | None = None
    for known, role in settings.api_key_roles.items():
        if hmac.compare_digest(known.encode(), key.encode()):
            found = role
    return found


def may_use_staff_pages(role: Role) -> bool:
    return role in STAFF_ROLES


def secure_cookies(settings: Settings) -> bool:
    return settings.public_base_url.lower().startswith("https://")


def set_session_cookie(response: Response, settings: Settings, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, value, max_age=int(SESSION_LIFETIME.total_seconds()), path="/",
        httponly=True, samesite="lax", secure=secure_cookies(settings),
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=secure_cookies(settings))


# -- who is calling -------------------------------------------------------------


@dataclass(frozen=True)
class StaffCaller:
    role: Role
    via: Literal["bearer", "session", "loopback"]

    @property
    def signed_in(self) -> bool:
        """A browser session that `/logout` can end."""
        return self.via == "session"


def current_session(request: Request, settings: Settings) -> StaffSession | None:
    value = request.cookies.get(SESSION_COOKIE)
    return read_session_cookie(settings.resolved_secret_key(), value) if value else None


def identify(request: Request, settings: Settings) -> StaffCaller:
    """Who sends the request: bearer key, session cookie, or a loopback caller
    without API keys configured; 401 otherwise (`api.deps.caller_role`)."""
    if request.headers.get("authorization"):
        return StaffCaller(role=caller_role(request, settings), via="bearer")
    session = current_session(request, settings)
    role = session_role(settings, session) if session is not None else None
    if role is not None:
        return StaffCaller(role=role, via="session")
    return StaffCaller(role=caller_role(request, settings), via="loopback")


def staff_caller(request: Request, settings: SettingsDep) -> StaffCaller:
    """The pages' dependency: a caller whose role is `ops` or `admin`, else 401/403."""
    caller = identify(request, settings)
    if not may_use_staff_pages(caller.role):
        raise HTTPException(403, f"the staff pages need the role ops; your key has {caller.role}")
    return caller


StaffCallerDep = Annotated[StaffCaller, Depends(staff_caller)]


# -- CSRF -----------------------------------------------------------------------


@dataclass(frozen=True)
class Csrf:
    """The form token of this browser, and the cookie to set when it had none."""

    token: str
    new_cookie: str | None = None

    def attach(self, response: Response, settings: Settings) -> None:
        if self.new_cookie is not None:
            response.set_cookie(CSRF_COOKIE, self.new_cookie, path="/", httponly=True, samesite="strict",
                                secure=secure_cookies(settings))


def csrf_for(request: Request, settings: Settings) -> Csrf:
    secret = settings.resolved_secret_key()
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie and 16 <= len(cookie) <= 128:
        return Csrf(token=_mac(secret, _CSRF_DOMAIN, cookie))
    fresh = secrets.token_urlsafe(24)
    return Csrf(token=_mac(secret, _CSRF_DOMAIN, fresh), new_cookie=fresh)


def csrf_valid(request: Request, settings: Settings, submitted: str) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    expected = _mac(settings.resolved_secret_key(), _CSRF_DOMAIN, cookie)
    return hmac.compare_digest(submitted.encode(), expected.encode())  # bytes: any text is just unequal


def check_csrf(request: Request, settings: Settings, caller: StaffCaller | None, submitted: str) -> None:
    """403 unless the form's token matches this browser's, or the caller used its key header."""
    if caller is not None and caller.via == "bearer":
        return
    if not csrf_valid(request, settings, submitted):
        raise HTTPException(403, "the form has expired or did not come from this site; reload the page and try again")
