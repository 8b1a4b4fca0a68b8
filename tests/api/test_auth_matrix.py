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

from api.app import create_app
from guest_journey.settings import Role, Settings
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
)
OTHER_ROLE: dict[Role, Role] = {"reservations": "ops", "ops": "reservations"}


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
    "path", ["/health/otel", "/metrics", "/openapi.json", "/docs"],
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
