"""Rate limits through HTTP: 429 with Retry-After over a limit, other callers
unaffected, buckets that refill with time (an injected clock), and the client
address behind trusted proxies only."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from api.app import create_app
from api.rate_limits import Limit, RateLimiter, TokenBuckets, client_address, route_limit
from guest_journey.settings import Settings

KEYS = "ops-key-1:ops,ops-key-2:ops"
GUEST_PAGE = "/guest/not-a-real-link/check-in"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Client = Callable[..., httpx.AsyncClient]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limited_settings(settings: Settings) -> Settings:
    return Settings(
        data_dir=settings.data_dir, secret_key="test-secret", temporal_address="127.0.0.1:1", api_keys=KEYS,
        whatsapp_app_secret="app-secret",
        rate_limit_guest_per_minute=3, rate_limit_whatsapp_webhook_per_minute=2, rate_limit_webhook_per_minute=4,
        rate_limit_login_per_minute=2, rate_limit_api_key_per_minute=2, trusted_proxies="10.0.0.0/8, 192.0.2.1",
    )


async def _clients(settings: Settings, clock: Clock) -> AsyncIterator[Client]:
    """One app; `client(address)` calls it from that address."""
    app = create_app(settings, rate_limiter=RateLimiter.from_settings(settings, clock=clock))
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        clients: dict[str, httpx.AsyncClient] = {}

        def client(address: str = "198.51.100.1") -> httpx.AsyncClient:
            if address not in clients:
                transport = httpx.ASGITransport(app=app, client=(address, 50000))
                clients[address] = httpx.AsyncClient(transport=transport, base_url="http://guest-journey.test")
            return clients[address]

        yield client
        for opened in clients.values():
            await opened.aclose()


@pytest.fixture
async def client(limited_settings: Settings, clock: Clock) -> AsyncIterator[Client]:
    async for make in _clients(limited_settings, clock):
        yield make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_guest_pages_answer_429_with_retry_after_in_the_guests_language(client):
    spanish = {"Accept-Language": "es"}
    answers = [await client().get(GUEST_PAGE, headers=spanish) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [403, 403, 403, 429]
    refused = answers[-1]
    assert refused.headers["retry-after"] == "20"  # 3 a minute: one more in 20 s
    assert refused.headers["content-type"].startswith("text/html")
    assert "Demasiadas solicitudes" in refused.text
    assert refused.headers["cache-control"] == "no-store"


async def test_another_address_is_not_affected(client):
    for _ in range(4):
        await client("198.51.100.1").get(GUEST_PAGE)
    assert (await client("198.51.100.1").get(GUEST_PAGE)).status_code == 429
    assert (await client("198.51.100.2").get(GUEST_PAGE)).status_code == 403


async def test_the_bucket_refills_with_time(client, clock):
    for _ in range(3):
        await client().get(GUEST_PAGE)
    assert (await client().get(GUEST_PAGE)).status_code == 429

    clock.advance(19)
    assert (await client().get(GUEST_PAGE)).headers["retry-after"] == "1"
    clock.advance(1)
    assert (await client().get(GUEST_PAGE)).status_code == 403  # one request refilled
    assert (await client().get(GUEST_PAGE)).status_code == 429
    clock.advance(600)
    assert [(await client().get(GUEST_PAGE)).status_code for _ in range(4)] == [403, 403, 403, 429]  # full, no more


async def test_web_chat_polling_gets_json(client):
    for _ in range(3):
        await client().get("/guest/not-a-real-link/chat/messages", headers={"Accept": "application/json"})
    refused = await client().get("/guest/not-a-real-link/chat/messages", headers={"Accept": "application/json"})
    assert refused.status_code == 429
    assert refused.json()["limit"] == "guest"
    assert "at most 3 per minute per client address" in refused.json()["detail"]


async def test_sign_in_attempts_are_limited_per_address(client):
    form = await client().get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    fields = {"api_key": "guessed-key", "csrf_token": token.group(1)}
    attempts = [await client().post("/login", data=fields) for _ in range(3)]
    assert [attempt.status_code for attempt in attempts] == [401, 401, 429]
    refused = attempts[-1]
    assert refused.headers["retry-after"] == "30"
    assert "Muitas tentativas de entrada" in refused.text and "aguarde 30 s" in refused.text
    assert (await client().get("/login")).status_code == 200  # the form itself still opens
    assert (await client("198.51.100.2").post("/login", data={"api_key": "guess"})).status_code == 403  # no token


async def test_the_whatsapp_webhook_is_limited_per_address(client):
    answers = [await client().post("/webhooks/whatsapp", content=b"{}") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [401, 401, 429]
    assert answers[-1].json() == {
        "detail": "too many WhatsApp webhook requests: at most 2 per minute per client address; retry in 30 s",
        "limit": "whatsapp_webhook",
    }
    assert (await client("198.51.100.2").post("/webhooks/whatsapp", content=b"{}")).status_code == 401


async def test_guest_pages_and_the_whatsapp_webhook_do_not_share_a_bucket(client):
    for _ in range(3):
        await client("198.51.100.1").get(GUEST_PAGE)
    assert (await client("198.51.100.1").get(GUEST_PAGE)).status_code == 429
    assert (await client("198.51.100.1").post("/webhooks/whatsapp", content=b"{}")).status_code == 401  # not 429

    for _ in range(2):
        await client("198.51.100.2").post("/webhooks/whatsapp", content=b"{}")
    assert (await client("198.51.100.2").post("/webhooks/whatsapp", content=b"{}")).status_code == 429
    assert (await client("198.51.100.2").get(GUEST_PAGE)).status_code == 403  # not 429


async def test_other_webhooks_do_not_spend_the_whatsapp_bucket(client):
    others = [await client().post("/webhooks/elsewhere", content=b"{}") for _ in range(5)]
    assert [answer.status_code for answer in others] == [404, 404, 404, 404, 429]
    assert others[-1].json()["limit"] == "webhook"
    assert (await client().post("/webhooks/whatsapp", content=b"{}")).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "limit"),
    [
        ("POST", "/webhooks/whatsapp", "whatsapp_webhook"),
        ("GET", "/webhooks/whatsapp", "whatsapp_webhook"),  # Meta's verification
        ("POST", "/webhooks/other", "webhook"),
        ("GET", "/guest/t/check-in", "guest"),
        ("POST", "/login", "login"),
        ("GET", "/reservations/R1", "api_key"),
        ("GET", "/metrics", None),
    ],
)
def test_each_route_counts_against_its_limit(method, path, limit):
    assert route_limit(method, path) == limit


async def test_each_api_key_has_its_own_bucket(client):
    first = [await client().get("/communications/templates", headers=bearer("ops-key-1")) for _ in range(3)]
    other_key = await client().get("/communications/templates", headers=bearer("ops-key-2"))

    assert [answer.status_code for answer in first] == [200, 200, 429]
    assert first[-1].json()["limit"] == "api_key"
    assert first[-1].headers["retry-after"] == "30"
    assert other_key.status_code == 200


async def test_guessed_keys_share_their_addresss_bucket(client):
    guesses = [await client().get("/communications/templates", headers=bearer(f"guess-{n}")) for n in range(3)]
    assert [answer.status_code for answer in guesses] == [401, 401, 429]
    assert (await client().get("/communications/templates", headers=bearer("ops-key-1"))).status_code == 200


async def test_metrics_and_static_files_are_not_limited(client):
    assert {(await client().get("/metrics")).status_code for _ in range(5)} == {200}
    assert {(await client().get("/static/guest.css")).status_code for _ in range(5)} == {200}


async def test_refusals_are_counted_by_limit_in_the_metrics(client):
    def refused(text: str) -> float:
        for line in text.splitlines():
            if line.startswith('guest_journey_requests_rate_limited_total{limit="guest"}'):
                return float(line.split()[-1])
        return 0.0

    before = refused((await client().get("/metrics")).text)
    for _ in range(5):
        await client().get(GUEST_PAGE)
    assert refused((await client().get("/metrics")).text) == before + 2


async def test_a_limit_of_zero_is_no_limit(limited_settings, clock):
    settings = limited_settings.model_copy(update={"rate_limit_guest_per_minute": 0})
    async for client in _clients(settings, clock):
        assert {(await client().get(GUEST_PAGE)).status_code for _ in range(10)} == {403}


async def test_a_trusted_proxys_forwarded_address_is_the_caller(client):
    proxy = client("10.0.0.5")

    def via(address: str) -> dict[str, Any]:
        return {"headers": {"X-Forwarded-For": address}}

    for _ in range(3):
        await proxy.get(GUEST_PAGE, **via("203.0.113.7"))
    assert (await proxy.get(GUEST_PAGE, **via("203.0.113.7"))).status_code == 429
    assert (await proxy.get(GUEST_PAGE, **via("203.0.113.8"))).status_code == 403  # another guest behind it


async def test_an_untrusted_peers_forwarded_header_is_ignored(client):
    untrusted = client("198.51.100.9")
    statuses = [
        (await untrusted.get(GUEST_PAGE, headers={"X-Forwarded-For": f"203.0.113.{n}"})).status_code
        for n in range(4)
    ]
    assert statuses == [403, 403, 403, 429]  # one bucket: the peer's


NETWORKS = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.0.2.1/32"))


def scope(peer: str, *forwarded: str) -> dict[str, Any]:
    return {"client": (peer, 1234), "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded]}


@pytest.mark.parametrize(
    ("peer", "forwarded", "caller"),
    [
        ("198.51.100.9", ["203.0.113.7"], "198.51.100.9"),  # not a proxy: its header is the caller's word
        ("10.0.0.5", [], "10.0.0.5"),  # a proxy that did not say
        ("10.0.0.5", ["203.0.113.7"], "203.0.113.7"),
        ("10.0.0.5", ["6.6.6.6, 203.0.113.7, 10.0.0.2"], "203.0.113.7"),  # through two proxies; 6.6.6.6 is spoofed
        ("10.0.0.5", ["6.6.6.6", "203.0.113.7"], "203.0.113.7"),  # the header given twice
        ("192.0.2.1", ["not-an-address, 10.0.0.2"], "10.0.0.2"),
        ("10.0.0.5", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # only proxies: the farthest
        ("2001:db8::1", ["203.0.113.7"], "2001:db8::1"),
    ],
)
def test_the_client_address_behind_proxies(peer, forwarded, caller):
    assert client_address(scope(peer, *forwarded), NETWORKS) == caller


def test_no_trusted_proxies_means_the_peer():
    assert client_address(scope("10.0.0.5", "203.0.113.7"), ()) == "10.0.0.5"


def test_memory_is_bounded_the_least_recently_used_bucket_goes_first(clock):
    buckets = TokenBuckets(clock=clock, max_buckets=2)
    limit = Limit("guest", 1, "requests", "client address")
    assert buckets.take(limit, "a") == (0, False)
    assert buckets.take(limit, "b") == (0, False)
    assert buckets.take(limit, "a") == (60, True)  # "a" used most recently
    assert buckets.take(limit, "a") == (60, False)
    assert buckets.take(limit, "c") == (0, False)  # "b" is dropped
    assert len(buckets) == 2
    assert buckets.take(limit, "a") == (60, False)  # kept, still empty
    assert buckets.take(limit, "b") == (0, False)  # forgotten: a new, full bucket


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ValidationError, match="entry 2, 'proxy.internal', is not an IP address or CIDR network"):
        Settings(data_dir=tmp_path, trusted_proxies="10.0.0.0/8,proxy.internal")
    with pytest.raises(ValidationError, match="rate_limit_login_per_minute"):
        Settings(data_dir=tmp_path, rate_limit_login_per_minute=-1)


def test_the_limits_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GUEST_JOURNEY_RATE_LIMIT_LOGIN_PER_MINUTE", "5")
    monkeypatch.setenv("GUEST_JOURNEY_TRUSTED_PROXIES", "10.0.0.0/8")
    limiter = RateLimiter.from_settings(Settings(data_dir=tmp_path))
    assert limiter.limits["login"].per_minute == 5
    assert limiter.limits["guest"].per_minute == 300
    assert limiter.limits["whatsapp_webhook"].per_minute == 15_000  # Meta's bursts: see api/rate_limits.py
    assert limiter.limits["webhook"].per_minute == 600
    assert limiter.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"),)
