"""Hostile requests: bodies over their limit (64 KiB; 3 MiB for the WhatsApp
webhook), malformed JSON, forged and replayed WhatsApp webhooks, forms without
their CSRF token.

Shown elsewhere and not repeated here:
- tests/api/test_inbound_and_webhooks.py: a missing or forged `X-Hub-Signature-256`
  is 401 (`test_webhook_signature_is_checked`); a redelivered status or inbound
  message is applied once (`test_webhook_statuses_apply_once_in_order_and_inbound_opens_the_window`);
- tests/communications/test_whatsapp_webhook.py: every malformed signature header;
- tests/api/test_guest_pages.py: the check-in form's CSRF token and same-origin check;
- tests/api/test_staff_pages.py: the panel's and the sign-in form's CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from api.limits import body_limit
from communications.message_store import MessageRecord
from guest_journey.guest_links import Purpose
from guest_journey.settings import Settings
from tests.api.conftest import app_client
from tests.api.test_auth_matrix import API_KEYS, ROUTES, concrete
from tests.api.test_guest_pages import book
from tests.api.test_inbound_and_webhooks import APP_SECRET, signed, whatsapp_payload
from tests.workflows.journeys import end

BODY_METHODS = {"POST", "PUT", "PATCH"}
BODY_ROUTES = sorted(
    (method, route.path) for route in ROUTES if route.api_route for method in route.methods & BODY_METHODS
)
# RFC 8058's one-click unsubscribe is a POST whose body means nothing: it is never read.
READS_NO_BODY = {("POST", "/guest/{token}/unsubscribe")}
PURPOSE_OF_PAGE = {"check-in": Purpose.checkin, "offers": Purpose.offer, "feedback": Purpose.feedback,
                   "chat": Purpose.chat, "unsubscribe": Purpose.unsubscribe}
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON_BODY = {"content-type": "application/json"}


def test_the_body_routes_are_found() -> None:
    assert {("PUT", "/reservations/{reservation_id}"), ("POST", "/webhooks/whatsapp"),
            ("POST", "/guest/{token}/check-in"), ("POST", "/guest-experience")} <= set(BODY_ROUTES)


def too_big(path: str) -> bytes:
    """A body one byte and more over the path's limit (`api.limits.body_limit`)."""
    return b"notes=" + b"x" * body_limit(path)


async def in_chunks(body: bytes) -> AsyncIterator[bytes]:
    """`body` streamed without a Content-Length (Transfer-Encoding: chunked)."""
    for start in range(0, len(body), 8 * 1024):
        yield body[start:start + 8 * 1024]


def guest_path(template: str, tokens: dict[Purpose, str]) -> str:
    """A guest page's path with a valid link of the page's purpose."""
    page = template.split("/")[3]
    return template.replace("{token}", tokens[PURPOSE_OF_PAGE[page]]).replace("{offer}", "room_upgrade")


async def test_every_body_route_refuses_a_body_over_its_limit_declared_or_streamed(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid, language="en")
        tokens = {purpose: links.token(rid, purpose, departure) for purpose in Purpose}
        declared, streamed = {}, {}
        for method, template in BODY_ROUTES:
            path = guest_path(template, tokens) if template.startswith("/guest/{token}/") else concrete(template)
            body = too_big(path)
            declared[method, template] = await web.request(method, path, content=body, headers=FORM)
            streamed[method, template] = await web.request(method, path, content=in_chunks(body), headers=FORM)
        await end(env, rid)

    for route in BODY_ROUTES:
        assert declared[route].status_code == 413, (route, declared[route].text[:200])
        if route not in READS_NO_BODY:
            assert streamed[route].status_code == 413, (route, streamed[route].status_code, streamed[route].text[:200])
    assert "64 KiB" in declared["PUT", "/reservations/{reservation_id}"].json()["detail"]
    assert "3 MiB" in declared["POST", "/webhooks/whatsapp"].json()["detail"]  # Meta's batches: api/limits.py


# -- malformed JSON -----------------------------------------------------------------

JSON_ROUTES = [
    ("PUT", "/reservations/R-JSON-1"),
    ("POST", "/reservations/R-JSON-1/events"),
    ("POST", "/guest-experience/journey"),
    ("POST", "/communications/send"),
    ("POST", "/communications/messages/inbound"),
]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"hotel_id": "h1", "guest": ', "JSON decode error"),
        (b"hotel_id=h1", "JSON decode error"),
        (b'{"a": 1,}', "JSON decode error"),
        (b'{"hotel_id": "\xff"}', "not UTF-8"),
    ],
    ids=["truncated", "a-form", "trailing-comma", "not-utf-8"],
)
async def test_malformed_json_is_422_naming_the_problem(api, body: bytes, problem: str) -> None:
    for method, path in JSON_ROUTES:
        answer = await api.request(method, path, content=body, headers=JSON_BODY)

        assert answer.status_code == 422, (method, path, answer.text)
        [error] = answer.json()["detail"]
        assert error["type"] == "json_invalid" and error["loc"][0] == "body", error
        assert problem in error["msg"], error


# -- WhatsApp webhooks ----------------------------------------------------------------


@pytest.fixture
async def webhook(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings.model_copy(update={
        "whatsapp_app_secret": SecretStr(APP_SECRET), "whatsapp_verify_token": SecretStr("verify-me"),
    })
    async for client in app_client(settings):
        yield client


def inbound(message_id: str, text: str, at: int = 1_767_000_000) -> dict:
    return whatsapp_payload(messages=[{
        "from": "5511988887777", "id": message_id, "timestamp": str(at), "type": "text", "text": {"body": text}}])


async def stored_whatsapp_messages(sessions) -> list[MessageRecord]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return list((await session.exec(select(MessageRecord).where(MessageRecord.channel == "whatsapp"))).all())


async def test_a_forged_webhook_records_nothing(webhook, sessions):
    raw, _ = signed(inbound("wamid.FORGED", "Olá"))
    other_secret = hmac.new(b"not-the-app-secret", raw, hashlib.sha256).hexdigest()
    forgeries = {
        "other secret": {"X-Hub-Signature-256": f"sha256={other_secret}"},
        "sha1 scheme": {"X-Hub-Signature": "sha1=" + hashlib.sha1(raw).hexdigest()},
        "signature of another body": signed(inbound("wamid.OTHER", "Oi"))[1],
        "not hex": {"X-Hub-Signature-256": "sha256=" + "zz" * 32},
        "not ASCII": {"X-Hub-Signature-256": ("sha256=" + "é" * 64).encode()},
    }
    answers = {}
    for name, headers in forgeries.items():
        answers[name] = await webhook.post("/webhooks/whatsapp", content=raw,
                                           headers={"Content-Type": "application/json", **headers})
    invalid = await webhook.post("/webhooks/whatsapp", content=b"{not json", headers={
        **JSON_BODY, "X-Hub-Signature-256": "sha256=" + hmac.new(APP_SECRET.encode(), b"{not json",
                                                                hashlib.sha256).hexdigest()})

    for name, answer in answers.items():
        assert answer.status_code == 401, (name, answer.text)
        assert "X-Hub-Signature-256" in answer.json()["detail"]
    assert invalid.status_code == 422 and "not JSON" in invalid.json()["detail"]
    assert await stored_whatsapp_messages(sessions) == []


async def test_a_replayed_message_id_is_recorded_once_whatever_the_payload(webhook, sessions):
    first = inbound("wamid.REPLAY", "Posso fazer check-in antes?")
    replayed_later = inbound("wamid.REPLAY", "Posso fazer check-in antes?", at=1_767_000_600)
    answers = []
    for payload in (first, first, replayed_later):
        raw, headers = signed(payload)
        answers.append(await webhook.post("/webhooks/whatsapp", content=raw, headers=headers))

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    [message] = await stored_whatsapp_messages(sessions)
    assert message.provider_message_id == "wamid.REPLAY" and message.direction == "inbound"


# -- forms without their CSRF token ---------------------------------------------------

BAD_TOKENS = {"missing": None, "forged": "forged-token-0123456789", "not ASCII": "é" * 43}


async def test_guest_forms_refuse_a_missing_forged_or_non_ascii_csrf_token(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid, language="en")
        urls = links.of(rid, departure, offer="room_upgrade")
        forms = {
            "check-in": (urls["checkin_url"], {"eta": "15:30", "terms": "yes", "signature": "Ana Souza"}),
            "offer": (urls["offer_url"], {"answer": "accept"}),
            "feedback": (urls["feedback_url"], {"satisfaction": "9", "score": "10", "comment": "ok"}),
            "chat": (urls["chat_url"], {"body": "Olá"}),
        }
        answers = {}
        for name, (url, fields) in forms.items():
            await web.get(url)  # the page sets the form's CSRF cookie
            for kind, token in BAD_TOKENS.items():
                data = fields if token is None else {**fields, "csrf_token": token}
                answers[name, kind] = await web.post(url, data=data)
        state = (await web.get(f"/guest-experience/{rid}")).json()
        await end(env, rid)

    for (name, kind), answer in answers.items():
        assert answer.status_code == 403, (name, kind, answer.status_code)
    assert state["checkin"]["status"] == "pending" and state["feedback"]["status"] != "received"
    assert not [message for message in state["messages"] if message["direction"] == "inbound"]
    assert not {upsell["status"] for upsell in state["upsells"]} & {"accepted", "declined"}


async def test_staff_forms_refuse_a_missing_forged_or_non_ascii_csrf_token(api_settings: Settings):
    async for web in app_client(api_settings):  # loopback without keys: the panel lets the caller in
        panel = await web.get("/guest-experience", headers={"accept": "text/html"})
        assert panel.status_code == 200  # it sets the CSRF cookie the forms pair with
        answers = {}
        for path, fields in (("/guest-experience", {"action": "send", "reservation_id": "R-1"}),
                             ("/login", {"api_key": "k", "next": "/"}), ("/logout", {})):
            for kind, token in BAD_TOKENS.items():
                data = fields if token is None else {**fields, "csrf_token": token}
                answers[path, kind] = await web.post(path, data=data)

    for (path, kind), answer in answers.items():
        assert answer.status_code == 403, (path, kind, answer.status_code, answer.text[:200])


async def test_a_forged_staff_session_cookie_is_no_session(api_settings: Settings):
    keyed = api_settings.model_copy(update={"api_keys": API_KEYS})
    async for web in app_client(keyed):
        answers = [
            await web.get("/guest-experience", headers={"accept": "text/html", "cookie": cookie})
            for cookie in (b"gj_staff=forged.cookie", ("gj_staff=" + "é" * 20 + "." + "é" * 20).encode())
        ]

    for answer in answers:
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), answer.text[:200]


# -- signed links and reply addresses -------------------------------------------------


async def test_a_link_or_reply_address_with_any_characters_is_just_not_ours(api):
    token = "eyJyIjoiUjEifQ.ééééééééééééééééééééééééééé"
    pages = [await api.get(f"/guest/{token}/{page}") for page in ("check-in", "feedback", "chat", "unsubscribe")]
    reply = await api.post("/communications/messages/inbound", json={
        "channel": "email", "sender": "someone@example.net", "body": "Oi",
        "to": "reply+" + "0" * 32 + "ſ" * 12 + "@hotel.example"})

    for page in pages:
        assert page.status_code == 403, (page.request.url, page.status_code)
    assert reply.status_code == 201 and reply.json()["reservation_id"] is None
