"""Who may call what, for every route the app serves (CONTRACT §1, §2).

The matrix is built from `create_app(settings).routes`, so a route added
later is checked too: it is either public (declared below, with the reason
it needs no key) or it names the role that may call it. A route that is
neither fails `test_every_route_is_declared` until it is declared.

With `GUEST_JOURNEY_API_KEYS` set, a protected route answers 401 without a
key, with an unknown key or with another scheme than Bearer, 403 with a key
of the wrong role, and neither with its own role or `admin` (what it does
then — 200, 404, 422 for the empty body — is other tests' business). Without
keys, only loopback callers are let in.

A key limited to some hotels (`key:role:hotel-a`, `api.access`) is checked on
every protected route too: each route declares in `SCOPE` either the requests
that name another hotel (its hotel id, or a reservation or message of it) with
the answer a scoped key gets (403 for a hotel named, 404 for a record of another
hotel, as if it did not exist) — and the same request naming the key's own
hotel, which is not refused — or why it names no hotel. An unscoped key of the
same role is not refused on the same request, so the refusal is the scope's.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import SecretStr
from sqlmodel.ext.asyncio.session import AsyncSession

from api.app import create_app
from communications.message_store import MessageRecord
from guest_journey.api_keys import Role
from guest_journey.database import SessionFactory
from guest_journey.journeys import JourneyView, Stage, workflow_id_for
from guest_journey.read_model import save_journey
from guest_journey.reservations import Guest
from guest_journey.settings import Settings
from tests.api.conftest import app_client

KEYS = {"reservations": "k-res-0123456789", "ops": "k-ops-0123456789", "admin": "k-admin-0123456789"}
API_KEYS = ",".join(f"{key}:{role}" for role, key in KEYS.items())
UNKNOWN_KEY = "k-unknown-0123456789"
REMOTE = ("203.0.113.7", 40000)  # TEST-NET-3: never loopback
LOOPBACK = ("127.0.0.1", 50000)
BASE_URL = "http://guest-journey.test"
JSON = {"accept": "application/json"}

# Routes any caller may reach, and why.
PUBLIC_PREFIXES = (
    "/guest",     # guest pages: the signed, expiring link is the credential
    "/webhooks",  # channel webhooks: the provider's signature is the credential
    "/static",    # CSS, JavaScript, icons
)
PUBLIC_PATHS = (
    "/health/otel",           # load balancers and container health checks
    "/health/live",           # the container's liveness check: the process answers
    "/health/ready",          # readiness: database, Temporal, a worker polling
    "/metrics",               # Prometheus scrapes; counts and KPIs, no guest data
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/login",                 # where a browser exchanges its key for a session
    "/logout",                # ends the caller's own session; needs none
)
# The role each protected route needs (admin passes everywhere).
ROLE_BY_PREFIX: tuple[tuple[str, Role], ...] = (
    ("/reservations", "reservations"),
    ("/guest-experience", "ops"),
    ("/communications", "ops"),
    ("/analytics", "ops"),
    ("/inbox", "ops"),
    ("/codec", "ops"),
    ("/policy", "admin"),
)
OTHER_ROLE: dict[Role, Role] = {"reservations": "ops", "ops": "reservations", "admin": "ops"}


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or any(_under(path, prefix) for prefix in PUBLIC_PREFIXES)


def role_for(path: str) -> Role | None:
    for prefix, role in ROLE_BY_PREFIX:
        if _under(path, prefix):
            return role
    return None


def concrete(path: str) -> str:
    """The route's path with every parameter filled in with a valid-looking value."""
    return re.sub(r"\{[^}]+\}", "AUTH-CHECK-1", path)


@dataclass(frozen=True)
class Served:
    path: str
    methods: frozenset[str]
    api_route: bool  # an APIRoute (its dependencies run); else a mount or a plain route


def served_routes(app: FastAPI) -> list[Served]:
    """Every route of the app with its full path, included routers flattened."""
    try:  # FastAPI keeps included routers as such and resolves them lazily
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: `app.routes` is already flat
        return [
            Served(getattr(route, "path", ""), frozenset(getattr(route, "methods", None) or ()),
                   isinstance(route, APIRoute))
            for route in app.routes
        ]
    return [
        Served(context.path or "", frozenset(context.methods or ()), isinstance(context.original_route, APIRoute))
        for context in iter_route_contexts(app.routes)
    ]


def _routes() -> list[Served]:
    """The routes as collected: building the app reads no database and writes nothing."""
    settings = Settings(
        env="development", data_dir=Path(tempfile.gettempdir()) / "gj-auth-routes", api_keys=None,
        secret_key=SecretStr("route-listing"), database_url=None, policy_file=None,
    )
    return served_routes(create_app(settings))


ROUTES = _routes()
ENDPOINTS = sorted(
    {
        (method, route.path)
        for route in ROUTES
        if route.api_route
        for method in route.methods
        if method not in ("HEAD", "OPTIONS")
    },
    key=lambda endpoint: (endpoint[1], endpoint[0]),
)
PROTECTED = [endpoint for endpoint in ENDPOINTS if not is_public(endpoint[1])]


def _id(endpoint: tuple[str, str]) -> str:
    return f"{endpoint[0]} {endpoint[1]}"


@asynccontextmanager
async def remote_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app as a caller from another machine sees it (the loopback rule does not apply)."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=REMOTE)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


@asynccontextmanager
async def loopback_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in app_client(settings):
        yield client


@pytest.fixture
def keyed_settings(api_settings: Settings) -> Settings:
    return api_settings.model_copy(update={"api_keys": API_KEYS})


def bearer(key: str) -> dict[str, str]:
    return {**JSON, "authorization": f"Bearer {key}"}


def refused_as_unauthenticated(response: httpx.Response) -> bool:
    """401, or — for a staff page a browser posts to — the redirect to sign in."""
    if response.status_code == 401:
        return True
    return response.status_code == 303 and response.headers.get("location", "").startswith("/login")


def describe(method: str, path: str, response: httpx.Response) -> str:
    return f"{method} {path} answered {response.status_code}: {response.text[:200]!r}"


# -- the declarations cover the app -------------------------------------------------


def test_every_route_is_declared() -> None:
    undeclared = [_id(endpoint) for endpoint in PROTECTED if role_for(endpoint[1]) is None]
    assert not undeclared, (
        "routes that are neither public nor given a role in tests/api/test_auth_matrix.py "
        f"(declare who may call them): {undeclared}"
    )


def test_routes_that_are_not_api_routes_are_public() -> None:
    """Mounts and plain routes (static files, OpenAPI, docs) bypass the role dependencies."""
    others = [route.path for route in ROUTES if not route.api_route and not is_public(route.path)]
    assert not others, f"non-API routes outside the public list: {others}"
    assert any(route.path == "/static" for route in ROUTES)


def test_the_matrix_is_not_empty() -> None:
    paths = {path for _, path in PROTECTED}
    for prefix in ("/reservations", "/guest-experience", "/communications"):
        assert any(_under(path, prefix) for path in paths), f"no protected route under {prefix}"


# -- with API keys configured -----------------------------------------------------


@pytest.mark.parametrize("endpoint", PROTECTED, ids=_id)
async def test_protected_route_with_keys(endpoint: tuple[str, str], keyed_settings: Settings) -> None:
    method, template = endpoint
    role = role_for(template)
    assert role is not None, f"{_id(endpoint)} has no declared role"
    path = concrete(template)
    async with remote_client(keyed_settings) as client:
        for headers in (
            JSON,
            bearer(UNKNOWN_KEY),
            bearer(""),
            {**JSON, "authorization": f"Basic {KEYS[role]}"},
            {**JSON, "authorization": KEYS[role]},
        ):
            response = await client.request(method, path, headers=headers)
            shown = headers.get("authorization", "no Authorization header")
            assert refused_as_unauthenticated(response), f"with {shown!r}: {describe(method, path, response)}"
            if response.status_code == 401:
                assert response.headers.get("www-authenticate", "").lower().startswith("bearer"), (
                    f"401 without 'WWW-Authenticate: Bearer': {describe(method, path, response)}"
                )

        wrong = OTHER_ROLE[role]
        response = await client.request(method, path, headers=bearer(KEYS[wrong]))
        assert response.status_code == 403, f"with the {wrong} key: {describe(method, path, response)}"

        for allowed in (role, "admin"):
            response = await client.request(method, path, headers=bearer(KEYS[allowed]))
            assert response.status_code not in (401, 403), (
                f"with the {allowed} key: {describe(method, path, response)}"
            )


@pytest.mark.parametrize(
    "path", ["/health/otel", "/health/live", "/health/ready", "/metrics", "/openapi.json", "/docs"],
)
async def test_public_routes_need_no_key(path: str, keyed_settings: Settings) -> None:
    async with remote_client(keyed_settings) as client:
        response = await client.get(path)
    assert response.status_code not in (401, 403), describe("GET", path, response)


async def test_login_page_needs_no_key(keyed_settings: Settings) -> None:
    assert any(route.api_route and route.path == "/login" for route in ROUTES), "the app serves no /login page"
    async with remote_client(keyed_settings) as client:
        response = await client.get("/login", headers={"accept": "text/html"})
    assert response.status_code == 200, describe("GET", "/login", response)


# -- without API keys: loopback only ------------------------------------------------


@pytest.mark.parametrize("endpoint", PROTECTED, ids=_id)
async def test_protected_route_without_keys(endpoint: tuple[str, str], api_settings: Settings) -> None:
    assert not api_settings.api_key_roles
    method, template = endpoint
    path = concrete(template)
    async with remote_client(api_settings) as client:
        response = await client.request(method, path, headers=JSON)
    assert refused_as_unauthenticated(response), f"from {REMOTE[0]}: {describe(method, path, response)}"

    async with loopback_client(api_settings) as client:
        response = await client.request(method, path, headers=JSON)
    assert response.status_code not in (401, 403), f"from {LOOPBACK[0]}: {describe(method, path, response)}"


# -- a key limited to some hotels -------------------------------------------------------

OWN_HOTEL, OTHER_HOTEL = "hotel-a", "hotel-b"
SCOPED_KEYS = {role: f"k-{role}-a-0123456789" for role in ("reservations", "ops", "admin")}
SCOPED_API_KEYS = API_KEYS + "".join(f",{key}:{role}:{OWN_HOTEL}|hotel-c" for role, key in SCOPED_KEYS.items())
OWN_ID, OTHER_ID = "SCOPE-A-1", "SCOPE-B-1"  # finished journeys of each hotel
OWN_MESSAGE, OTHER_MESSAGE = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"


@dataclass(frozen=True)
class Call:
    path: str
    json: object = None
    data: dict[str, str] | None = None


@dataclass(frozen=True)
class Probe:
    """`other` names the other hotel, and a scoped key gets `refused`; `own` is the same
    request naming the key's own hotel, which it is not refused."""

    other: Call
    refused: int
    own: Call


def _reservation(hotel: str) -> dict[str, object]:
    return {"hotel_id": hotel, "guest": {"name": "Ana Souza", "email": "ana@example.com"},
            "arrival": "2030-05-01T15:00:00+00:00", "departure": "2030-05-03T11:00:00+00:00"}


def _inbound(reservation_id: str) -> dict[str, object]:
    return {"channel": "email", "sender": "ana@example.com", "body": "Obrigada", "reservation_id": reservation_id}


def _reply_form(reservation_id: str) -> dict[str, str]:
    return {"reservation_id": reservation_id, "action": "reply", "reply_channel": "email",
            "sender": "ana@example.com", "reply_body": "Ligou para a recepção", "request_id": "a" * 32}


# What each protected route does with a key limited to some hotels: probes, or why it names no hotel.
SCOPE: dict[tuple[str, str], tuple[Probe, ...] | str] = {
    ("PUT", "/reservations/{reservation_id}"): (
        Probe(Call(f"/reservations/{OTHER_ID}", json=_reservation(OTHER_HOTEL)), 403,  # a hotel named: 403
              Call(f"/reservations/{OWN_ID}", json=_reservation(OWN_HOTEL))),
        Probe(Call(f"/reservations/{OTHER_ID}", json=_reservation(OWN_HOTEL)), 404,  # another hotel's id: 404
              Call(f"/reservations/{OWN_ID}", json=_reservation(OWN_HOTEL))),
    ),
    ("POST", "/reservations/batch"): "names a hotel per reservation: one of another hotel is answered in "
    "`failures` with the PUT's words, the others start (tests/api/test_reservations_batch.py)",
    ("DELETE", "/reservations/{reservation_id}"): (
        Probe(Call(f"/reservations/{OTHER_ID}"), 404, Call(f"/reservations/{OWN_ID}")),
    ),
    ("POST", "/reservations/{reservation_id}/events"): (
        Probe(Call(f"/reservations/{OTHER_ID}/events", json={"type": "checked_in"}), 404,
              Call(f"/reservations/{OWN_ID}/events", json={"type": "checked_in"})),
    ),
    ("GET", "/guest-experience/{reservation_id}"): (
        Probe(Call(f"/guest-experience/{OTHER_ID}"), 404, Call(f"/guest-experience/{OWN_ID}")),
    ),
    ("GET", "/guest-experience"): (
        Probe(Call(f"/guest-experience?reservation_id={OTHER_ID}"), 404,
              Call(f"/guest-experience?reservation_id={OWN_ID}")),
    ),
    ("POST", "/guest-experience"): (
        Probe(Call("/guest-experience", data=_reply_form(OTHER_ID)), 404,
              Call("/guest-experience", data=_reply_form(OWN_ID))),
    ),
    ("GET", "/guest-experience/journey"): "counts: only the key's hotels (test_hotel_scope.py)",
    ("POST", "/guest-experience/journey"): "another hotel's reservation is reported unknown (test_hotel_scope.py)",
    ("GET", "/analytics"): (
        Probe(Call(f"/analytics?hotel_id={OTHER_HOTEL}"), 403, Call(f"/analytics?hotel_id={OWN_HOTEL}")),
    ),
    ("GET", "/policy"): "lists only the key's hotels' policies (test_policy_page.py)",
    ("POST", "/policy"): (
        Probe(Call("/policy", data={"draft": "", "hotel_id": OTHER_HOTEL}), 403,
              Call("/policy", data={"draft": "", "hotel_id": OWN_HOTEL})),
    ),
    ("POST", "/analytics/measure"): "runs the hourly KPI schedule now, the same for every caller; it answers "
                                     "only a redirect to the dashboard, which is scoped (test_staff_pages.py)",
    ("GET", "/communications/delivery/summary"): (
        Probe(Call(f"/communications/delivery/summary?hotel_id={OTHER_HOTEL}"), 403,
              Call(f"/communications/delivery/summary?hotel_id={OWN_HOTEL}")),
    ),
    ("POST", "/communications/messages/inbound"): (
        Probe(Call("/communications/messages/inbound", json=_inbound(OTHER_ID)), 404,
              Call("/communications/messages/inbound", json=_inbound(OWN_ID))),
    ),
    ("POST", "/communications/messages/{message_id}/send-again"): (
        Probe(Call(f"/communications/messages/{OTHER_MESSAGE}/send-again"), 404,
              Call(f"/communications/messages/{OWN_MESSAGE}/send-again")),
    ),
    ("POST", "/communications/send"): (
        Probe(Call("/communications/send", json={"reservation_id": OTHER_ID, "template": "free_text",
                                                 "context": {"body": "Olá"}}), 404,
              Call("/communications/send", json={"reservation_id": OWN_ID, "template": "free_text",
                                                 "context": {"body": "Olá"}})),
    ),
    ("GET", "/communications/templates"): "the template catalogue: no hotel's data",
    ("GET", "/inbox"): "lists only the key's hotels' conversations (tests/api/test_inbox.py)",
    ("GET", "/inbox/events"): "says only that something changed; the list it leads to is scoped",
    ("GET", "/inbox/{reservation_id}/{channel}"): "another hotel's conversation is 404 (tests/api/test_inbox.py)",
    ("POST", "/inbox/{reservation_id}/{channel}"): "acts only on a conversation the GET shows: another hotel's is "
                                                   "404 before anything is read (tests/api/test_inbox.py)",
    ("GET", "/communications/mail-in/unmatched"): "e-mail no reservation was found for belongs to no hotel: "
                                                   "a scoped key gets an empty list (test_mail_in.py)",
    ("POST", "/codec/decode"): "a payload of another hotel's journey is 404 (tests/api/test_codec.py)",
    ("POST", "/codec/encode"): "encrypts nothing, reads no journey: payloads come back as given",
}


def test_every_protected_route_declares_what_a_scoped_key_sees() -> None:
    undeclared = [_id(endpoint) for endpoint in PROTECTED if endpoint not in SCOPE]
    assert not undeclared, (
        "routes without a hotel-scope declaration in SCOPE (tests/api/test_auth_matrix.py): say which "
        f"request names another hotel and what a scoped key gets, or why the route names no hotel: {undeclared}"
    )
    assert not set(SCOPE) - set(PROTECTED), f"SCOPE names routes the app does not serve: {set(SCOPE) - set(PROTECTED)}"


async def _seed(session: AsyncSession) -> None:
    """A finished journey and a delivered message of each hotel."""
    for reservation_id, hotel, message_id in ((OWN_ID, OWN_HOTEL, OWN_MESSAGE), (OTHER_ID, OTHER_HOTEL, OTHER_MESSAGE)):
        await save_journey(session=session, view=JourneyView(
            reservation_id=reservation_id, workflow_id=workflow_id_for(reservation_id), hotel_id=hotel,
            stage=Stage.cancelled, guest=Guest(name="Ana Souza", email="ana@example.com"),
            arrival="2030-05-01T15:00:00+00:00", departure="2030-05-03T11:00:00+00:00",  # type: ignore[arg-type]
        ))
        session.add(MessageRecord(id=message_id, reservation_id=reservation_id, hotel_id=hotel, direction="outbound",
                                  channel="email", template="free_text", step_key="manual:x", status="delivered",
                                  recipient="ana@example.com"))
    await session.commit()


@pytest.fixture
async def scoped_settings(api_settings: Settings, sessions: SessionFactory) -> Settings:
    async with sessions() as session:
        await _seed(session)
    return api_settings.model_copy(update={"api_keys": SCOPED_API_KEYS})


async def _call(client: httpx.AsyncClient, method: str, call: Call, key: str) -> httpx.Response:
    return await client.request(method, call.path, headers=bearer(key), json=call.json, data=call.data)


@pytest.mark.parametrize("endpoint", PROTECTED, ids=_id)
async def test_a_scoped_key_on_every_route(endpoint: tuple[str, str], scoped_settings: Settings) -> None:
    method, template = endpoint
    role = role_for(template)
    assert role is not None
    declared = SCOPE.get(endpoint)
    assert declared is not None, f"{_id(endpoint)} is not in SCOPE"
    path = concrete(template)
    async with remote_client(scoped_settings) as client:
        # The role still decides first: a scoped key is a key like the others.
        wrong = await client.request(method, path, headers=bearer(SCOPED_KEYS[OTHER_ROLE[role]]))
        assert wrong.status_code == 403, f"scoped key of the wrong role: {describe(method, path, wrong)}"
        right = await client.request(method, path, headers=bearer(SCOPED_KEYS[role]))
        assert right.status_code not in (401, 403), f"scoped key of its role: {describe(method, path, right)}"
        if isinstance(declared, str):
            return
        for probe in declared:
            for key in (SCOPED_KEYS[role], SCOPED_KEYS["admin"]):
                refused = await _call(client, method, probe.other, key)
                assert refused.status_code == probe.refused, (
                    f"scoped key, other hotel: {describe(method, probe.other.path, refused)}"
                )
                if probe.refused == 403:
                    assert OTHER_HOTEL in refused.text, describe(method, probe.other.path, refused)
                else:  # as if it did not exist: the other hotel is not named
                    assert OTHER_HOTEL not in refused.text, describe(method, probe.other.path, refused)
                own = await _call(client, method, probe.own, key)
                assert own.status_code not in (401, 403, 404), (
                    f"scoped key, own hotel: {describe(method, probe.own.path, own)}"
                )
            unscoped = await _call(client, method, probe.other, KEYS[role])
            assert unscoped.status_code not in (401, 403, 404), (
                f"unscoped key, other hotel: {describe(method, probe.other.path, unscoped)}"
            )
