"""Rate limits: each caller gets a token bucket per limit, in this process's memory.

| limit | routes | caller | setting (per minute) |
| --- | --- | --- | --- |
| `guest` | `/guest/…`: guest pages, unsubscribe, web chat and its polling | client address | `GUEST_JOURNEY_RATE_LIMIT_GUEST_PER_MINUTE` (300) |
| `webhook` | `/webhooks/…` | client address | `GUEST_JOURNEY_RATE_LIMIT_WEBHOOK_PER_MINUTE` (600) |
| `login` | `POST /login` (staff sign-in attempts) | client address | `GUEST_JOURNEY_RATE_LIMIT_LOGIN_PER_MINUTE` (10) |
| `api_key` | every other route | the API key it carries, else client address | `GUEST_JOURNEY_RATE_LIMIT_API_KEY_PER_MINUTE` (1200) |

`/health/…`, `/metrics` and `/static/…` are not limited; 0 turns a limit off.
A bucket holds a minute's worth of requests and refills continuously, so a
caller may burst up to the limit and then goes on at the limit's pace. Over
it, the answer is `429 Too Many Requests` with `Retry-After` (whole seconds):
a page in the guest's language on the guest pages, a staff page on `/login`,
JSON `{"detail", "limit"}` elsewhere. Only a known API key has a bucket of its
own: unknown keys share their address's, so guessing keys is limited too.

The client address is the connection's peer; when the peer is one of
`GUEST_JOURNEY_TRUSTED_PROXIES`, it is the nearest `X-Forwarded-For` hop that
is not a trusted proxy itself. Buckets are per process (per API replica); at
most `MAX_BUCKETS` are kept, the least recently used dropped first.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from fastapi.responses import JSONResponse, Response
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.guest.errors import SECURITY_HEADERS as GUEST_HEADERS
from api.guest.errors import GuestPageError
from api.guest.errors import error_page as guest_error_page
from api.staff.route import SECURITY_HEADERS as STAFF_HEADERS
from api.staff.route import error_page as staff_error_page
from guest_journey.settings import Settings
from guest_journey.telemetry import REQUESTS_RATE_LIMITED

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_BUCKETS = 50_000
UNLIMITED_PREFIXES = ("/health/", "/metrics", "/static/")


@dataclass(frozen=True)
class Limit:
    name: str
    per_minute: int
    what: str  # the requests it counts, for the error
    per: str  # whose bucket, for the error


@dataclass(frozen=True)
class Refusal:
    limit: Limit
    retry_after: int  # whole seconds until the bucket holds a request again


@dataclass
class _Bucket:
    tokens: float
    updated: float
    refusing: bool = False


class TokenBuckets:
    """A bucket per (limit, caller); at most `max_buckets`, least recently used dropped first."""

    def __init__(self, *, clock: Clock = time.monotonic, max_buckets: int = MAX_BUCKETS) -> None:
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, limit: Limit, caller: str) -> tuple[int, bool]:
        """Take one request from the caller's bucket: `(0, False)` when it held one, else
        the seconds until it holds one and whether this is the first refusal in a row."""
        now = self.clock()
        capacity = float(limit.per_minute)
        per_second = limit.per_minute / 60.0
        key = (limit.name, caller)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=capacity, updated=now)
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * per_second)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.refusing = False
            return 0, False
        first = not bucket.refusing
        bucket.refusing = True
        return max(1, math.ceil((1.0 - bucket.tokens) / per_second)), first


def route_limit(method: str, path: str) -> str | None:
    """The name of the limit a request counts against; None for unlimited routes."""
    if path.startswith("/guest/"):
        return "guest"
    if path.startswith("/webhooks/"):
        return "webhook"
    if path == "/login":
        return "login" if method == "POST" else "api_key"
    if path.startswith(UNLIMITED_PREFIXES):
        return None
    return "api_key"


def client_address(scope: Scope, trusted_proxies: Sequence[Network]) -> str:
    """The peer, or behind trusted proxies the nearest `X-Forwarded-For` hop that is not one."""
    peer = scope.get("client")
    address = str(peer[0]) if peer else "unknown"
    if not trusted_proxies or not _within(address, trusted_proxies):
        return address
    hops = [
        hop.strip()
        for name, value in scope.get("headers") or []
        if name == b"x-forwarded-for"
        for hop in value.decode("latin-1").split(",")
    ]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # not an address: what is left of it cannot be trusted
        address = hop
        if not _within(hop, trusted_proxies):
            return hop
    return address


def _within(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class RateLimiter:
    """Which limit a request counts against, whose bucket it takes from, and the buckets."""

    def __init__(
        self,
        limits: Iterable[Limit],
        *,
        api_keys: Iterable[str] = (),
        trusted_proxies: Sequence[Network] = (),
        buckets: TokenBuckets | None = None,
    ) -> None:
        self.limits = {limit.name: limit for limit in limits}
        self.trusted_proxies = tuple(trusted_proxies)
        self.buckets = buckets if buckets is not None else TokenBuckets()
        self._known_keys = frozenset(_fingerprint(key) for key in api_keys)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = time.monotonic) -> RateLimiter:
        return cls(
            [
                Limit("guest", settings.rate_limit_guest_per_minute, "guest page requests", "client address"),
                Limit("webhook", settings.rate_limit_webhook_per_minute, "webhook requests", "client address"),
                Limit("login", settings.rate_limit_login_per_minute, "sign-in attempts", "client address"),
                Limit("api_key", settings.rate_limit_api_key_per_minute, "requests",
                      "API key (per client address without a known key)"),
            ],
            api_keys=settings.api_key_roles,
            trusted_proxies=settings.trusted_proxy_networks,
            buckets=TokenBuckets(clock=clock),
        )

    def check(self, scope: Scope) -> Refusal | None:
        """Count the request; a `Refusal` when its caller is over the limit."""
        name = route_limit(scope["method"], scope["path"])
        limit = self.limits.get(name) if name is not None else None
        if limit is None or limit.per_minute <= 0:
            return None
        wait, first = self.buckets.take(limit, self._caller(scope, limit))
        if not wait:
            return None
        REQUESTS_RATE_LIMITED.labels(limit=limit.name).inc()
        if first:
            logger.warning("rate limit reached: %s", limit.name, extra={"limit": limit.name})
        return Refusal(limit=limit, retry_after=wait)

    def _caller(self, scope: Scope, limit: Limit) -> str:
        if limit.name == "api_key" and self._known_keys:
            key = _bearer_key(scope)
            if key and _fingerprint(key) in self._known_keys:
                return "key:" + _fingerprint(key)
        return "address:" + client_address(scope, self.trusted_proxies)


def _bearer_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            scheme, _, key = value.decode("latin-1").partition(" ")
            return key.strip() if scheme.lower() == "bearer" else None
    return None


class RateLimits:
    """ASGI middleware: `429 Too Many Requests` with `Retry-After` for a caller over its limit."""

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self.limiter.check(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        response = too_many_requests(Request(scope), refusal)
        await response(scope, receive, send)


def too_many_requests(request: Request, refusal: Refusal) -> Response:
    """The 429 answer: a page where a person is reading one, JSON for programs."""
    limit, wait = refusal.limit, refusal.retry_after
    wants_json = "application/json" in request.headers.get("accept", "")
    response: Response
    if limit.name == "guest" and not wants_json:
        response = guest_error_page(request, GuestPageError(429, "too_many"))
        response.headers.update(GUEST_HEADERS)
    elif limit.name == "login":
        response = staff_error_page(request, 429, "Muitas tentativas de entrada",
                                    f"aguarde {wait} s e tente de novo")
        response.headers.update(STAFF_HEADERS)
    else:
        detail = (f"too many {limit.what}: at most {limit.per_minute} per minute per {limit.per}; "
                  f"retry in {wait} s")
        response = JSONResponse({"detail": detail, "limit": limit.name}, status_code=429)
    response.headers["Retry-After"] = str(wait)
    return response
