"""API security (issue 13, items 4, 6, 7 and 10), through real HTTP: the app served by
uvicorn exactly as `guest-journey dev`/`serve` configure it (`api_server_config`).

- without API keys, only loopback Host names and the public base URL's are served;
- wrong Bearer keys count in a tight per-address bucket (per /64 for IPv6), and
  uvicorn trusts forwarded addresses from `GUEST_JOURNEY_TRUSTED_PROXIES` only;
- forms compare `Origin` with the public base URL's origin, not with Host;
- signing out revokes the session; HSTS over https; earlier secret keys still
  verify links and cookies (`GUEST_JOURNEY_SECRET_KEY_FALLBACKS`).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from api.app import create_app
from api.rate_limits import Limit, RateLimiter, bucket_address
from api.staff.session import SESSION_COOKIE, make_session_cookie, read_session_cookie
from commands.cli import api_server_config
from guest_journey.guest_links import Purpose, make_token, message_replied_to, reply_token
from guest_journey.settings import Settings
from tests.api.test_guest_pages import GOOD_CHECKIN, POLICY, book, csrf, request_id
from tests.smtp_server import free_port
from tests.workflows.journeys import end

OPS = "ops-key-" + "o" * 24
RES = "res-key-" + "r" * 24
KEYS = f"{OPS}:ops,{RES}:reservations"
ADMIN_ROUTE = "/guest-experience/journey"  # needs the role ops: admin passes
HTML = {"accept": "text/html"}


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[str]:
    """The app over HTTP on 127.0.0.1, configured as the CLI configures it; yields its URL."""
    port = free_port()
    settings = settings.model_copy(update={"api_host": "127.0.0.1", "api_port": port})
    config = api_server_config(settings, create_app(settings))
    config.log_level = "warning"
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    async with asyncio.timeout(15):
        while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


@asynccontextmanager
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with served(settings) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


# -- item 4: without API keys, only loopback names ----------------------------------------


async def test_without_keys_a_foreign_host_is_refused_before_loopback_becomes_admin(api_settings):
    keyless = api_settings.model_copy(update={"api_keys": None, "public_base_url": "https://guests.hotel.example"})
    async with http(keyless) as web:
        port = web.base_url.port
        rebound = await web.get(ADMIN_ROUTE, headers={"host": "attacker.example"})
        relayed = await web.get(ADMIN_ROUTE, headers={"host": f"tunnel.example:{port}"})
        answers = {
            host: (await web.get(ADMIN_ROUTE, headers={"host": host})).status_code
            for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost",
                         "guests.hotel.example", "GUESTS.hotel.example:443")
        }
    for refused in (rebound, relayed):
        assert refused.status_code == 421, refused.text
        assert "answers only to localhost, 127.0.0.1, [::1]" in refused.json()["detail"]
        assert "GUEST_JOURNEY_API_KEYS" in refused.json()["detail"]
    assert set(answers.values()) == {200}, answers


async def test_with_keys_the_host_is_not_checked(api_settings):
    keyed = api_settings.model_copy(update={"api_keys": KEYS})
    async with http(keyed) as web:
        other = await web.get(ADMIN_ROUTE, headers={"host": "api.hotel.example", "authorization": f"Bearer {OPS}"})
        anonymous = await web.get(ADMIN_ROUTE, headers={"host": "api.hotel.example"})
    assert other.status_code == 200, other.text
    assert anonymous.status_code == 401


# -- item 6: brute force ---------------------------------------------------------------


async def test_wrong_keys_are_limited_per_address_and_uvicorn_does_not_trust_forwarded_for(api_settings):
    keyed = api_settings.model_copy(update={"api_keys": KEYS, "trusted_proxies": None})
    async with http(keyed) as web:
        # Without TRUSTED_PROXIES, X-Forwarded-For is no way to get a fresh address per guess.
        guesses = [
            await web.get(ADMIN_ROUTE, headers={"authorization": f"Bearer guess-{n}",
                                                "x-forwarded-for": f"198.51.100.{n}"})
            for n in range(12)
        ]
        other_route = await web.get("/reservations/R1", headers={"authorization": "Bearer guess-x"})
        known = await web.get(ADMIN_ROUTE, headers={"authorization": f"Bearer {OPS}"})
    assert [answer.status_code for answer in guesses[:10]] == [401] * 10
    for refused in (*guesses[10:], other_route):
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["limit"] == "failed_key"
        assert "at most 10 per minute per client address" in refused.json()["detail"]
    assert known.status_code == 200  # a known key from the same address still passes


async def test_behind_a_trusted_proxy_wrong_keys_count_per_client_and_per_ipv6_64(api_settings):
    keyed = api_settings.model_copy(update={"api_keys": KEYS, "trusted_proxies": "127.0.0.1"})
    async with http(keyed) as web:
        async def guess(client: str) -> int:
            headers = {"authorization": "Bearer guess", "x-forwarded-for": client}
            return (await web.get(ADMIN_ROUTE, headers=headers)).status_code

        # One /64: each guess from another of its addresses, still one bucket.
        same_64 = [await guess(f"2001:db8:1:2::{n:x}") for n in range(1, 12)]
        next_64 = await guess("2001:db8:1:3::1")
        ipv4 = await guess("203.0.113.9")
    assert same_64 == [401] * 10 + [429]
    assert next_64 == 401 and ipv4 == 401


def test_every_bucket_keys_ipv6_callers_per_64_and_mapped_ipv4_as_ipv4():
    assert bucket_address("2001:db8:1:2:aaaa::1") == bucket_address("2001:db8:1:2:ffff::2") == "2001:db8:1:2::/64"
    assert bucket_address("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert bucket_address("::ffff:203.0.113.9") == "203.0.113.9"
    assert bucket_address("203.0.113.9") == "203.0.113.9"
    limiter = RateLimiter([Limit("guest", 1, "guest page requests", "client address")])

    def scope(address: str) -> dict[str, object]:
        return {"type": "http", "method": "GET", "path": "/guest/x/check-in", "headers": [], "client": (address, 1)}

    assert limiter.check(scope("2001:db8:1:2::1")) is None
    assert limiter.check(scope("2001:db8:1:2::2")) is not None  # same /64: same guest bucket
    assert limiter.check(scope("2001:db8:1:3::1")) is None


# -- item 7: forms behind a proxy that rewrites Host ---------------------------------------


@pytest.fixture
def behind_nginx(api_settings: Settings, tmp_path: Path) -> Settings:
    """Guests reach https://guests.hotel.example; nginx passes Host 127.0.0.1:<port> on."""
    policy = tmp_path / "guest-policy.yaml"
    policy.write_text(POLICY)
    return api_settings.model_copy(update={"policy_file": policy, "public_base_url": "https://guests.hotel.example"})


async def test_a_guest_form_from_the_public_origin_is_accepted_whatever_the_host(env, worker, behind_nginx):
    rid = f"R-SEC-{uuid.uuid4().hex[:10]}"
    secret = behind_nginx.resolved_secret_key()
    async with worker(), http(behind_nginx) as web:
        departure = await book(web, env, rid)
        url = f"/guest/{make_token(secret, rid, Purpose.checkin, departure)}/check-in"
        form = await web.get(url)
        foreign = await web.post(url, data={**GOOD_CHECKIN, "csrf_token": csrf(form), "request_id": request_id(form)},
                                 headers={"origin": "https://evil.example"})
        sent = await web.post(url, data={**GOOD_CHECKIN, "csrf_token": csrf(form), "request_id": request_id(form)},
                              headers={"origin": "https://guests.hotel.example"})
        state = (await web.get(f"/guest-experience/{rid}")).json()
        await end(env, rid)
    assert foreign.status_code == 403
    assert sent.status_code == 303, sent.text
    assert state["checkin"]["status"] == "completed"


async def test_a_staff_form_checks_its_origin_against_the_public_base_url(api_settings):
    # http: over https the cookies would be Secure, and this test's client speaks plain HTTP.
    keyed = api_settings.model_copy(update={"api_keys": KEYS, "public_base_url": "http://staff.hotel.example"})
    async with http(keyed) as web:
        form = await web.get("/login", headers=HTML)
        fields = {"api_key": OPS, "next": "/guest-experience", "csrf_token": csrf(form)}
        foreign = await web.post("/login", data=fields, headers={"origin": "https://evil.example"})
        ours = await web.post("/login", data=fields, headers={"origin": "http://staff.hotel.example"})
    assert foreign.status_code == 403, foreign.text
    assert ours.status_code == 303, ours.text


async def test_the_default_loopback_base_url_accepts_any_loopback_origin(api_settings):
    local = api_settings.model_copy(update={"api_keys": KEYS, "public_base_url": "http://127.0.0.1:8000"})
    async with http(local) as web:
        form = await web.get("/login", headers=HTML)
        fields = {"api_key": OPS, "next": "/guest-experience", "csrf_token": csrf(form)}
        localhost = await web.post("/login", data=fields, headers={"origin": f"http://localhost:{web.base_url.port}"})
        foreign = await web.post("/login", data=fields, headers={"origin": "http://192.0.2.1:8000"})
    assert localhost.status_code == 303, localhost.text
    assert foreign.status_code == 403


# -- item 10: sign-out, HSTS, key rotation ----------------------------------------------


async def sign_in(web: httpx.AsyncClient) -> str:
    form = await web.get("/login", headers=HTML)
    signed = await web.post("/login", data={"api_key": OPS, "next": "/guest-experience", "csrf_token": csrf(form)})
    assert signed.status_code == 303, signed.text
    return web.cookies[SESSION_COOKIE]


@pytest.mark.parametrize("how", ["post", "get"])
async def test_signing_out_revokes_the_session_even_for_a_replayed_cookie(api_settings, how):
    keyed = api_settings.model_copy(update={"api_keys": KEYS})
    async with served(keyed) as url:
        async with httpx.AsyncClient(base_url=url) as browser:
            cookie = await sign_in(browser)
            panel = await browser.get("/guest-experience", headers=HTML)
            assert panel.status_code == 200
            if how == "post":
                out = await browser.post("/logout", data={"csrf_token": csrf(panel)})
            else:
                out = await browser.get("/logout")
            assert out.status_code == 303
        async with httpx.AsyncClient(base_url=url, cookies={SESSION_COOKIE: cookie}) as replay:
            replayed = await replay.get("/guest-experience", headers=HTML)
            login = await replay.get("/login", headers=HTML)
        async with httpx.AsyncClient(base_url=url) as again:
            fresh = await sign_in(again)
            still = await again.get("/guest-experience", headers=HTML)
    assert replayed.status_code == 303 and replayed.headers["location"].startswith("/login")
    assert "Você já entrou" not in login.text  # the login page does not greet a revoked session either
    assert fresh != cookie and still.status_code == 200  # signing in again opens a new session


async def test_hsts_is_sent_over_https_only(api_settings):
    https = api_settings.model_copy(update={"public_base_url": "https://guests.hotel.example"})
    plain = api_settings.model_copy(update={"trusted_proxies": "127.0.0.1"})
    async with http(https) as web:
        by_setting = await web.get("/health/live")
    async with http(plain) as web:
        over_http = await web.get("/health/live")
        proxied_https = await web.get("/health/live", headers={"x-forwarded-proto": "https"})
    untrusted = api_settings.model_copy(update={"trusted_proxies": "192.0.2.0/24"})
    async with http(untrusted) as web:
        claimed = await web.get("/health/live", headers={"x-forwarded-proto": "https"})
    assert by_setting.headers["strict-transport-security"] == "max-age=31536000"
    assert proxied_https.headers["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in over_http.headers
    assert "strict-transport-security" not in claimed.headers


async def test_links_and_cookies_signed_with_an_earlier_key_still_work_after_rotation(api_settings):
    old, new = "old-secret-" + "o" * 24, "new-secret-" + "n" * 24
    departure = datetime.now(UTC) + timedelta(days=3)
    old_link = make_token(old, "R-ROT-1", Purpose.unsubscribe, departure)
    old_cookie = make_session_cookie(old, "ops", OPS)
    rotated = api_settings.model_copy(
        update={"api_keys": KEYS, "secret_key": SecretStr(new), "secret_key_fallbacks": SecretStr(old)}
    )
    forgotten = api_settings.model_copy(update={"api_keys": KEYS, "secret_key": SecretStr(new)})
    async with http(rotated) as web:
        link = await web.get(f"/guest/{old_link}/unsubscribe")
        web.cookies.set(SESSION_COOKIE, old_cookie)
        page = await web.get("/guest-experience", headers=HTML)
        web.cookies.clear()
        await sign_in(web)
        new_cookie = web.cookies[SESSION_COOKIE]
    async with http(forgotten) as web:
        refused_link = await web.get(f"/guest/{old_link}/unsubscribe")
        web.cookies.set(SESSION_COOKIE, old_cookie)
        refused_page = await web.get("/guest-experience", headers=HTML)
    assert link.status_code == 200, link.text
    assert page.status_code == 200, page.text
    assert refused_link.status_code == 403
    assert refused_page.status_code == 303
    # New cookies are signed with the current key only.
    assert read_session_cookie(new, new_cookie) is not None
    assert read_session_cookie(old, new_cookie) is None


def test_reply_addresses_signed_with_an_earlier_key_are_still_read():
    old, new = "old-secret-" + "o" * 24, "new-secret-" + "n" * 24
    message_id = str(uuid.uuid4())
    address = f"reply+{reply_token(old, message_id)}@hotel.example"
    assert message_replied_to((new, old), address) == message_id
    assert message_replied_to(new, address) is None
    assert re.fullmatch(r"[0-9a-f]{32}[A-Za-z0-9_-]{12}", reply_token(new, message_id))
