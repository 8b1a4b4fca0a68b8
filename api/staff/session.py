"""Staff sign-in: a signed session cookie carrying the role of an API key,
and the CSRF token of the staff forms.

`/login` takes an API key (CONTRACT §1). When the key's role may use the
staff pages (`ops` or `admin`), the browser gets the cookie `gj_staff`:
`<payload>.<signature>`, the payload naming the role, a fingerprint of the
key (an HMAC of it, never the key), the expiry and a random session id,
signed under the service's secret key with a salt of its own (`staff-session:`,
`guest_journey.signing`), so that no guest link can pass for it nor it for
one. The cookie is HttpOnly, SameSite=Lax, and Secure when the public base URL is
https. Cookies (and fingerprints) signed with a key now in
`GUEST_JOURNEY_SECRET_KEY_FALLBACKS` are still accepted; new ones are signed
with the current key.

Signing out (`/logout`) records the session id in the database
(`guest_journey.staff_sessions`): the cookie, even a copy of it replayed
later, no longer signs anyone in. A cookie without a session id (made before
sessions had one) is not accepted.

On every request the fingerprint must still name a configured key, and the
role and hotels are that key's now (`key:role:hotel-a|hotel-b`, `api.access`):
taking a key out of `GUEST_JOURNEY_API_KEYS` signs out every browser that
signed in with it, and narrowing its hotels narrows the session's.

`staff_caller` is the pages' dependency: the `Authorization: Bearer` key
when the request sends one (a script), else the session cookie, else
`api.deps.caller_principal` (which lets loopback callers in when no API keys are
configured, in development, and answers 401 otherwise).

Every staff form carries `csrf_token`, an HMAC of the random `gj_staff_csrf`
cookie (SameSite=Strict), and a form sent with an `Origin` must come from the
public base URL's origin (`api.hosts.origin_allowed`). A request authenticated
by its `Authorization` header sends no ambient credential and needs neither.
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

from api.access import Principal
from api.deps import Services, ServicesDep, caller_principal
from api.hosts import origin_allowed
from guest_journey import signing
from guest_journey.api_keys import ROLES, KeyAccess, Role
from guest_journey.settings import Settings
from guest_journey.staff_sessions import revoke_staff_session, staff_session_revoked

SESSION_COOKIE = "gj_staff"
CSRF_COOKIE = "gj_staff_csrf"
CSRF_FIELD = "csrf_token"
SESSION_LIFETIME = timedelta(hours=12)
STAFF_ROLES: tuple[Role, ...] = ("ops", "admin")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_fingerprint(secret: str, key: str) -> str:
    return signing.sign(signing.Purpose.STAFF_KEY, secret, key)


@dataclass(frozen=True)
class StaffSession:
    role: Role
    fingerprint: str
    expires_at: datetime
    session_id: str  # what `/logout` revokes (`guest_journey.staff_sessions`)


def make_session_cookie(secret: str, role: Role, key: str, now: datetime | None = None) -> str:
    expires = (now or datetime.now(UTC)) + SESSION_LIFETIME
    body = {"r": role, "f": key_fingerprint(secret, key), "e": int(expires.timestamp()),
            "i": secrets.token_urlsafe(18)}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{signing.sign(signing.Purpose.STAFF_SESSION, secret, payload)}"


def read_session_cookie(
    secret: signing.Secrets, value: str, now: datetime | None = None
) -> StaffSession | None:
    """The session a cookie carries, when it is ours (signed with the current key or one of
    `GUEST_JOURNEY_SECRET_KEY_FALLBACKS`), intact, not expired, and has a session id."""
    payload, _, signature = value.partition(".")
    if not payload or not signature or len(value) > 512:
        return None
    if not signing.verify(signing.Purpose.STAFF_SESSION, secret, payload, signature):
        return None
    try:
        body = json.loads(_unb64(payload))
        role, fingerprint, session_id = body["r"], body["f"], body["i"]
        expires_at = datetime.fromtimestamp(int(body["e"]), UTC)
    except (ValueError, KeyError, TypeError):
        return None
    if role not in ROLES or not isinstance(fingerprint, str):
        return None
    if not isinstance(session_id, str) or not 16 <= len(session_id) <= 64:
        return None
    if expires_at <= (now or datetime.now(UTC)):
        return None
    return StaffSession(role=role, fingerprint=fingerprint, expires_at=expires_at, session_id=session_id)


def session_access(settings: Settings, session: StaffSession) -> KeyAccess | None:
    """The current role and hotels of the key the session was opened with; None once the key
    is gone. The fingerprint may have been made under a key now among the fallbacks."""
    found: KeyAccess | None = None
    secrets_ = settings.verification_secret_keys()
    for key, access in settings.api_key_access.items():
        if signing.verify(signing.Purpose.STAFF_KEY, secrets_, key, session.fingerprint) and found is None:
            found = access
    return found


def session_role(settings: Settings, session: StaffSession) -> Role | None:
    access = session_access(settings, session)
    return access.role if access is not None else None


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
    hotels: frozenset[str] | None = None  # the key's hotels (`api.access`); None: every hotel
    who: str = "local"  # who this is, as the inbox's "assign to me" keeps it: never the key itself

    @property
    def principal(self) -> Principal:
        return Principal(role=self.role, hotels=self.hotels)

    @property
    def signed_in(self) -> bool:
        """A browser session that `/logout` can end."""
        return self.via == "session"


def current_session(request: Request, settings: Settings) -> StaffSession | None:
    """The session the cookie carries, before asking whether it was signed out
    (`live_session`)."""
    value = request.cookies.get(SESSION_COOKIE)
    return read_session_cookie(settings.verification_secret_keys(), value) if value else None


async def live_session(request: Request, services: Services) -> StaffSession | None:
    """The cookie's session, unless it was signed out (`guest_journey.staff_sessions`)."""
    session = current_session(request, services.settings)
    if session is None:
        return None
    async with services.sessions() as db:
        if await staff_session_revoked(session=db, session_id=session.session_id):
            return None
    return session


async def end_session(request: Request, services: Services) -> None:
    """Revoke the cookie's session on the server, so that a copy of it no longer works."""
    session = current_session(request, services.settings)
    if session is not None:
        async with services.sessions() as db:
            await revoke_staff_session(session=db, session_id=session.session_id, expires_at=session.expires_at)


async def identify(request: Request, services: Services) -> StaffCaller:
    """Who sends the request: bearer key, session cookie, or a loopback caller
    without API keys configured; 401 otherwise (`api.deps.caller_principal`). A caller carries its key's hotels
    (`api.access`): a session signed in with a scoped key sees only those."""
    settings = services.settings
    if request.headers.get("authorization"):
        principal = caller_principal(request, settings)
        return StaffCaller(role=principal.role, via="bearer", hotels=principal.hotels,
                           who=_who(request.headers["authorization"].removeprefix("Bearer ").strip()))
    session = await live_session(request, services)
    access = session_access(settings, session) if session is not None else None
    if access is not None and session is not None:
        return StaffCaller(role=access.role, via="session", hotels=access.hotels, who=_who(session.fingerprint))
    principal = caller_principal(request, settings)
    return StaffCaller(role=principal.role, via="loopback", hotels=principal.hotels)


def _who(secret_part: str) -> str:
    """A short id for one staff key or session, from which the key cannot be told."""
    return "k" + hashlib.sha256(f"guest-journey staff:{secret_part}".encode()).hexdigest()[:11]


async def staff_caller(request: Request, services: ServicesDep) -> StaffCaller:
    """The pages' dependency: a caller whose role is `ops` or `admin`, else 401/403."""
    caller = await identify(request, services)
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
        return Csrf(token=signing.sign(signing.Purpose.STAFF_CSRF, secret, cookie))
    fresh = secrets.token_urlsafe(24)
    return Csrf(token=signing.sign(signing.Purpose.STAFF_CSRF, secret, fresh), new_cookie=fresh)


def csrf_valid(request: Request, settings: Settings, submitted: str) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    return signing.verify(signing.Purpose.STAFF_CSRF, settings.verification_secret_keys(), cookie, submitted)


def check_csrf(request: Request, settings: Settings, caller: StaffCaller | None, submitted: str) -> None:
    """403 unless the form's token matches this browser's and its `Origin`, when sent, is
    the public base URL's (`api.hosts.origin_allowed`); a caller that used its key header
    sends no ambient credential and needs neither."""
    if caller is not None and caller.via == "bearer":
        return
    origin = request.headers.get("origin")
    if origin and origin != "null" and not origin_allowed(settings.public_base_url, origin):
        raise HTTPException(403, "the form was sent from another site; open the page from this site and try again")
    if not csrf_valid(request, settings, submitted):
        raise HTTPException(403, "the form has expired or did not come from this site; reload the page and try again")
