"""Rate limits: each caller gets a token bucket per limit, in this process's memory.

| limit | routes | caller | setting (per minute) |
| --- | --- | --- | --- |
| `guest` | `/guest/…`: guest pages, unsubscribe, web chat and its polling | client address | `GUEST_JOURNEY_RATE_LIMIT_GUEST_PER_MINUTE` (300) |
| `whatsapp_webhook` | `/webhooks/whatsapp`: Meta's deliveries (and its verification) | client address | `GUEST_JOURNEY_RATE_LIMIT_WHATSAPP_WEBHOOK_PER_MINUTE` (15000) |
| `webhook` | every other `/webhooks/…` | client address | `GUEST_JOURNEY_RATE_LIMIT_WEBHOOK_PER_MINUTE` (600) |
| `login` | `POST /login` (staff sign-in attempts) | client address | `GUEST_JOURNEY_RATE_LIMIT_LOGIN_PER_MINUTE` (10) |
| `api_key` | every other route | the API key it carries, else client address | `GUEST_JOURNEY_RATE_LIMIT_API_KEY_PER_MINUTE` (1200) |
| `failed_key` | any request whose `Authorization: Bearer` key is wrong or unknown, on any route | client address | `GUEST_JOURNEY_RATE_LIMIT_FAILED_KEY_PER_MINUTE` (10) |

`/health/…`, `/metrics` and `/static/…` are not limited; 0 turns a limit off.
A bucket holds a minute's worth of requests and refills continuously, so a
caller may burst up to the limit and then goes on at the limit's pace. Over
it, the answer is `429 Too Many Requests` with `Retry-After` (whole seconds):
a page in the guest's language on the guest pages, a staff page on `/login`,
JSON `{"detail", "limit"}` elsewhere. Only a known API key has a bucket of its
own: unknown keys share their address's, so guessing keys is limited too.
On top of that, every request with a wrong key counts in the address's
`failed_key` bucket, as tight as sign-in attempts (`/login`): over it, the
address's wrong keys are answered 429 before any route runs, whatever the
route (a known key from the same address still passes).

The WhatsApp webhook has a bucket of its own, apart from the guest pages and
any other webhook, and a large one: refusing Meta delays every status behind
the refusal (Meta redelivers with growing pauses), and a WhatsApp send whose
answer was lost waits only `delivery.wait_for_provider_status` for its status
before it is declared in doubt. Meta delivers from a few addresses, so one
address may carry all of it. 15000 a minute (250 a second) is what one
business number can cause at Meta's default throughput, 80 messages a second
(https://developers.facebook.com/docs/whatsapp/throughput; inbound and
outbound together), each sent message reported up to three times (`sent`,
`delivered`, `read`): 80 × 3 = 240 a second, rounded up. A bucket of that size
also takes the burst of a backlog Meta redelivers after an outage at once.
Raise it for a number upgraded to higher throughput or several numbers on one
app. Callers that are not Meta are kept out by the signature (401), not by
this limit, which only bounds what one address can make the API verify.

The client address is the connection's peer; when the peer is one of
`GUEST_JOURNEY_TRUSTED_PROXIES`, it is the nearest `X-Forwarded-For` hop that
is not a trusted proxy itself. An IPv6 caller is counted per /64 (the
block one customer line or one cloud host gets, and any of whose 2^64
addresses the caller may use), an IPv4 caller (or IPv4-mapped IPv6) per
address. Buckets are per process (per API replica); at most `MAX_BUCKETS` are
kept, the least recently used dropped first.
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
from api.limits import WHATSAPP_WEBHOOK_PATH
from api.staff.route import SECURITY_HEADERS as STAFF_HEADERS
from api.staff.route import error_page as staff_error_page
from guest_journey.settings import Settings
from guest_journey.telemetry import REQUESTS_RATE_LIMITED

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_BUCKETS = 50_000
UNLIMITED_PREFIXES = ("/health/", "/metrics", "/static/")
FAILED_KEY = "failed_key"


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
    if path == WHATSAPP_WEBHOOK_PATH:
        return "whatsapp_webhook"
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


def bucket_address(address: str) -> str:
    """Whose bucket an address counts in: itself for IPv4, its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


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
                Limit("whatsapp_webhook", settings.rate_limit_whatsapp_webhook_per_minute,
                      "WhatsApp webhook requests", "client address"),
                Limit("webhook", settings.rate_limit_webhook_per_minute, "webhook requests", "client address"),
                Limit("login", settings.rate_limit_login_per_minute, "sign-in attempts", "client address"),
                Limit("api_key", settings.rate_limit_api_key_per_minute, "requests",
                      "API key (per client address without a known key)"),
                Limit(FAILED_KEY, settings.rate_limit_failed_key_per_minute, "requests with a wrong API key",
                      "client address"),
            ],
            api_keys=settings.api_key_roles,
            trusted_proxies=settings.trusted_proxy_networks,
            buckets=TokenBuckets(clock=clock),
        )

    def check(self, scope: Scope) -> Refusal | None:
        """Count the request; a `Refusal` when its caller is over the limit."""
        refusal = self._take_if_wrong_key(scope)
        if refusal is not None:
            return refusal
        name = route_limit(scope["method"], scope["path"])
        limit = self.limits.get(name) if name is not None else None
        if limit is None or limit.per_minute <= 0:
            return None
        return self._take(limit, self._caller(scope, limit))

    def _take_if_wrong_key(self, scope: Scope) -> Refusal | None:
        """A request with a Bearer key that is none of ours counts in its address's `failed_key` bucket."""
        limit = self.limits.get(FAILED_KEY)
        if limit is None or limit.per_minute <= 0 or not self._known_keys:
            return None
        key = _bearer_key(scope)
        if key is None or _fingerprint(key) in self._known_keys:
            return None
        return self._take(limit, "address:" + bucket_address(client_address(scope, self.trusted_proxies)))

    def _take(self, limit: Limit, caller: str) -> Refusal | None:
        wait, first = self.buckets.take(limit, caller)
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
        return "address:" + bucket_address(client_address(scope, self.trusted_proxies))


def _bearer_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            scheme, _, key = value.decode("latin-1").partition(" ")
            return (key.strip() or None) if scheme.lower() == "bearer" else None
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
