"""What handlers receive: settings, the Temporal client, a database session,
the journey policy, and the caller (`Principal`: its role and hotels, `api.access`).
Built once in the app's lifespan."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from api.access import EVERY_HOTEL_ADMIN, Principal
from communications.templates import TemplateCatalogue
from guest_journey.api_keys import Role
from guest_journey.database import SessionFactory
from guest_journey.policy import JourneyPolicy
from guest_journey.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    temporal: Client
    sessions: SessionFactory
    policy: JourneyPolicy
    templates: TemplateCatalogue


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


async def get_temporal(services: ServicesDep) -> Client:
    return services.temporal


async def get_templates(services: ServicesDep) -> TemplateCatalogue:
    return services.templates


async def get_policy(services: ServicesDep) -> JourneyPolicy:
    return services.policy


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    async with services.sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
TemporalClientDep = Annotated[Client, Depends(get_temporal)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
PolicyDep = Annotated[JourneyPolicy, Depends(get_policy)]
TemplatesDep = Annotated[TemplateCatalogue, Depends(get_templates)]


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("testclient", "localhost")


def caller_principal(request: Request, settings: SettingsDep) -> Principal:
    """Who calls, by the API key the request carries (CONTRACT §1): its role and hotels
    (`api.access`). Without keys, a loopback caller is admin of every hotel:
    `api.hosts.AllowedHosts` has already refused any Host but loopback's and the public
    base URL's, and wrong keys are rate-limited in `api.rate_limits`."""
    keys = settings.api_key_access
    if not keys:
        if _is_loopback(request):
            return EVERY_HOTEL_ADMIN
        raise HTTPException(401, "API keys are not configured; only loopback callers are allowed")
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'",
                            headers={"WWW-Authenticate": "Bearer"})
    for known, access in keys.items():
        if hmac.compare_digest(known.encode(), key.encode()):
            return Principal.of(access)
    raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})


async def caller(request: Request, settings: SettingsDep) -> Principal:
    """`caller_principal` as a dependency. Every dependency here is `async`: it waits on
    nothing, and FastAPI would run a plain function in a worker thread, a thread hop
    per dependency per request."""
    return caller_principal(request, settings)


def caller_role(request: Request, settings: SettingsDep) -> Role:
    return caller_principal(request, settings).role


# Declares the API key in the OpenAPI document (an HTTP bearer scheme on every route that
# needs a role); `caller_principal` does the checking, so this one never refuses.
BEARER = HTTPBearer(
    scheme_name="apiKey", auto_error=False,
    description="A key from GUEST_JOURNEY_API_KEYS: `Authorization: Bearer <key>`. Its role (reservations, ops, "
    "admin) says which routes it may call, and `key:role:hotel-a|hotel-b` limits it to those hotels.",
)


def require_role(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through the given roles (and `admin`), 403 for others; the
    caller's `Principal` (handlers take it as `PrincipalDep`, computed once a request)."""

    async def check(
        principal: Annotated[Principal, Depends(caller)],
        _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        if principal.role != "admin" and principal.role not in roles:
            raise HTTPException(
                403, f"this route needs the role {' or '.join(roles)}; your key has {principal.role}"
            )
        return principal

    return check


PrincipalDep = Annotated[Principal, Depends(caller)]
