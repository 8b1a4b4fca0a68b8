"""Every way a guest's message comes in is received the same way
(`services.inbound_messages.receive_inbound`): a reply to one of our messages
counts once in the response-time metric, whichever entry point took it, and a
redelivered message does not count again."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from communications.channels.webchat import WebchatSender
from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from tests.api.conftest import app_client
from tests.api.test_guest_pages import Links
from tests.api.test_inbound_and_webhooks import APP_SECRET, signed, whatsapp_payload
from tests.api.test_reservations import reservation_body
from tests.api.test_staff_pages import HTML, KEYS, OPS, RES, bearer
from tests.workflows.journeys import end, now

PHONE = "+5511999990000"


@pytest.fixture
def entry_settings(api_settings: Settings) -> Settings:
    return api_settings.model_copy(update={
        "api_keys": KEYS, "whatsapp_app_secret": SecretStr(APP_SECRET), "whatsapp_verify_token": SecretStr("verify"),
    })


@pytest.fixture
async def web(entry_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in app_client(entry_settings):
        yield client


def replies(channel: Channel) -> float:
    """How many replies the response-time metric has counted on `channel`."""
    value = REGISTRY.get_sample_value("guest_journey_guest_reply_time_seconds_count", {"channel": channel.value})
    return value or 0.0


async def counted(channel: Channel, act: Callable[[], Awaitable[httpx.Response]]) -> tuple[httpx.Response, float]:
    """The answer to `act`, and how many replies it added to the metric on `channel`."""
    before = replies(channel)
    answer = await act()
    return answer, replies(channel) - before


async def outbound_in_chat(web: httpx.AsyncClient, chat_url: str) -> None:
    for _ in range(300):
        messages = (await web.get(chat_url + "/messages")).json()["messages"]
        if any(message["direction"] == "outbound" for message in messages):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the hotel's chat message never showed in the guest's chat")


async def test_each_entry_point_counts_a_reply_once(env, worker, email, web, entry_settings):
    rid = f"R-ENTRY-{uuid.uuid4().hex[:8]}"
    arrival = await now(env) + timedelta(days=2)
    body = reservation_body(arrival, phone=PHONE)
    chat_url = Links(entry_settings).of(rid, datetime.fromisoformat(body["departure"]))["chat_url"]
    seen: dict[str, tuple[httpx.Response, float]] = {}
    async with worker({Channel.email: email, Channel.webchat: WebchatSender()}):
        put = await web.put(f"/reservations/{rid}", json=body, headers=bearer(RES))
        assert put.status_code == 201, put.text
        await email.wait_for(1)
        invitation = email.sent[0].message_id

        seen["api"] = await counted(Channel.email, lambda: web.post(
            "/communications/messages/inbound", headers=bearer(OPS), json={
                "channel": "email", "sender": "ana@example.com", "body": "Chego às 22h", "in_reply_to": invitation}))

        ts = str(int(datetime.now(UTC).timestamp()))
        raw, signature = signed(whatsapp_payload(messages=[{
            "from": PHONE.removeprefix("+"), "id": f"wamid.{rid}", "timestamp": ts, "type": "text",
            "text": {"body": "Posso levar o cachorro?"}, "context": {"id": f"<{invitation}@test>"}}]))
        seen["webhook"] = await counted(Channel.whatsapp, lambda: web.post(
            "/webhooks/whatsapp", content=raw, headers=signature))
        seen["webhook again"] = await counted(Channel.whatsapp, lambda: web.post(
            "/webhooks/whatsapp", content=raw, headers=signature))

        reply = {"action": "reply", "reservation_id": rid, "reply_channel": "email", "sender": "ana@example.com",
                 "reply_body": "Ligou: chega às 23h", "reply_in_reply_to": invitation,
                 "request_id": uuid.uuid4().hex}
        seen["panel"] = await counted(Channel.email, lambda: web.post(
            "/guest-experience", headers={**bearer(OPS), **HTML}, data=reply))
        seen["panel again"] = await counted(Channel.email, lambda: web.post(
            "/guest-experience", headers={**bearer(OPS), **HTML}, data=reply))

        hotel = await web.post("/communications/send", headers=bearer(OPS), json={
            "reservation_id": rid, "template": "free_text", "channel": "webchat", "context": {"body": "Olá, Ana!"}})
        assert hotel.status_code == 202, hotel.text
        await outbound_in_chat(web, chat_url)
        page = await web.get(chat_url)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, page.text
        seen["guest chat"] = await counted(Channel.webchat, lambda: web.post(
            chat_url, data={"csrf_token": token.group(1), "body": "Obrigada!"}))

        journey: dict[str, Any] = (await web.get(f"/guest-experience/{rid}", headers=bearer(OPS))).json()
        await end(env, rid)

    statuses = {name: answer.status_code for name, (answer, _) in seen.items()}
    assert statuses == {"api": 201, "webhook": 200, "webhook again": 200, "panel": 303, "panel again": 303,
                        "guest chat": 303}, {name: answer.text[:300] for name, (answer, _) in seen.items()}
    assert {name: added for name, (_, added) in seen.items()} == {
        "api": 1, "webhook": 1, "webhook again": 0, "panel": 1, "panel again": 0, "guest chat": 1}
    inbound = [m for m in journey["messages"] if m["direction"] == "inbound"]
    assert sorted(m["channel"] for m in inbound) == ["email", "email", "webchat", "whatsapp"]
    assert all(m["in_reply_to"] for m in inbound)
