"""The inbox through HTTP: conversations unanswered first with their timers, a
hotel-scoped key sees only its hotels, "assign to me" and "done" are kept, a
WhatsApp free text outside the 24-hour window is refused with the reason, and
the live stream says when something changed."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from api.routes import inbox as inbox_route
from guest_journey.journeys import Stage
from guest_journey.settings import Settings
from tests.api.test_staff_pages import (
    HTML,
    KEYS,
    app_sessions,
    client_for,
    csrf,
    message,
    seed,
    sign_in,
    view,
)

SCOPED = "rio-key-0123456789"
SCOPED_KEYS = f"{KEYS},{SCOPED}:ops:hotel-rio"
__all__ = ["app_sessions"]


@pytest.fixture
def staff_settings(api_settings: Settings) -> Settings:
    return api_settings.model_copy(update={"api_keys": SCOPED_KEYS})


@pytest.fixture
async def web(staff_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(staff_settings, "203.0.113.7"):
        yield client


async def seed_inbox(sessions) -> str:
    p = f"I{uuid.uuid4().hex[:5]}-"
    t = datetime.now(UTC)
    await seed(sessions, [
        view(p + "SP", hotel_id="hotel-sp", arrival=t + timedelta(days=1)),
        view(p + "RIO", hotel_id="hotel-rio", arrival=t - timedelta(days=1), stage=Stage.in_stay),
    ], [
        message(p + "w1", p + "SP", "inbound", "received", t - timedelta(days=2), hotel_id="hotel-sp",
                channel="whatsapp", body="Vocês têm estacionamento?"),
        message(p + "w2", p + "SP", "outbound", "read", t - timedelta(days=2) + timedelta(minutes=4),
                hotel_id="hotel-sp", channel="whatsapp", step_key="manual:w2", template="free_text", body="Temos."),
        message(p + "c1", p + "RIO", "inbound", "received", t - timedelta(minutes=25), hotel_id="hotel-rio",
                channel="webchat", body="A piscina abre que horas?"),
    ])
    return p


def listed(page: httpx.Response) -> list[str]:
    return re.findall(r'data-reservation="([^"]+)" data-channel="([^"]+)"', page.text)


async def test_the_inbox_lists_conversations_unanswered_first_and_keeps_assignee_and_done(
    app_sessions, web
):
    p = await seed_inbox(app_sessions)
    await sign_in(web, next="/inbox")
    page = await web.get("/inbox", headers=HTML)
    assert page.status_code == 200
    assert 'aria-current="page">Caixa de entrada' in page.text
    mine = [item for item in listed(page) if item[0].startswith(p)]
    assert mine == [(p + "RIO", "webchat"), (p + "SP", "whatsapp")]
    assert 'data-unanswered="1"' in page.text  # the count the page title carries
    rio = page.text[page.text.index(f'data-reservation="{p}RIO"'):]
    assert "conversation unanswered late" in page.text and "Aguardando há <span class=\"elapsed\">25 min" in rio
    assert "A piscina abre que horas?" in rio and "Hospedado" in rio and "Chat web" in rio
    assert "hotel-sp 4,0 min" not in page.text  # that reply was two days ago: not in the last 24 h

    conversation = await web.get(f"/inbox/{p}RIO/webchat", headers=HTML)
    assert conversation.status_code == 200 and "A piscina abre que horas?" in conversation.text
    assert 'name="body"' in conversation.text and "Convite de check-in" in conversation.text  # canned replies
    token = csrf(conversation)
    taken = await web.post(f"/inbox/{p}RIO/webchat", data={"csrf_token": token, "action": "assign"})
    assert taken.status_code == 303
    closed = await web.post(f"/inbox/{p}SP/whatsapp", data={"csrf_token": token, "action": "done"})
    assert closed.status_code == 303
    assert (await web.get(f"/inbox/{p}RIO/webchat", headers=HTML)).text.count("Você") >= 1

    mine_only = await web.get("/inbox", params={"assignee": "me"}, headers=HTML)
    assert [item for item in listed(mine_only) if item[0].startswith(p)] == [(p + "RIO", "webchat")]
    open_ones = await web.get("/inbox", headers=HTML)
    assert [item for item in listed(open_ones) if item[0].startswith(p)] == [(p + "RIO", "webchat")]
    done = await web.get("/inbox", params={"status": "done", "channel": "whatsapp"}, headers=HTML)
    assert [item for item in listed(done) if item[0].startswith(p)] == [(p + "SP", "whatsapp")]


async def test_outside_the_whatsapp_window_the_page_says_why_free_text_cannot_go(app_sessions, web):
    p = await seed_inbox(app_sessions)
    await sign_in(web, next="/inbox")
    page = await web.get(f"/inbox/{p}SP/whatsapp", headers=HTML)
    assert "A janela de 24 horas do WhatsApp fechou" in page.text and 'name="body"' not in page.text
    refused = await web.post(f"/inbox/{p}SP/whatsapp", data={
        "csrf_token": csrf(page), "action": "reply", "body": "Oi de novo"})
    assert refused.status_code == 422
    assert "a janela de 24 horas do WhatsApp fechou: escolha uma resposta pronta" in refused.text


async def test_a_hotel_scoped_key_sees_only_its_hotels(app_sessions, web):
    p = await seed_inbox(app_sessions)
    await sign_in(web, key=SCOPED, next="/inbox")
    page = await web.get("/inbox", headers=HTML)
    assert [item for item in listed(page) if item[0].startswith(p)] == [(p + "RIO", "webchat")]
    assert (await web.get(f"/inbox/{p}SP/whatsapp", headers=HTML)).status_code == 404
    assert (await web.get("/inbox/../etc/webchat", headers=HTML)).status_code == 404


async def test_the_live_stream_says_when_something_changed(app_sessions, web, monkeypatch):
    await seed_inbox(app_sessions)
    monkeypatch.setattr(inbox_route, "STREAM_FOR", 1.2)  # the test client reads a stream only when it ends
    await sign_in(web, next="/inbox")
    stream = await web.get("/inbox/events", headers={"accept": "text/event-stream"})
    assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
    assert stream.text.count("event: change\ndata: ") == 1  # nothing changed while it ran
    once = await web.get("/inbox/events")  # not asking for a stream: the current state, once
    assert once.text.count("event: change") == 1
    fragment = await web.get("/inbox", params={"fragment": "list"}, headers=HTML)
    assert fragment.text.lstrip().startswith('<section id="inbox"') and "<html" not in fragment.text
    assert (await web.get("/inbox/events", headers={"authorization": "Bearer nope"})).status_code == 401


async def test_a_hotel_scoped_key_cannot_act_on_another_hotels_conversation(app_sessions, web):
    p = await seed_inbox(app_sessions)
    await sign_in(web, key=SCOPED, next="/inbox")
    page = await web.get(f"/inbox/{p}RIO/webchat", headers=HTML)
    refused = await web.post(f"/inbox/{p}SP/whatsapp", data={"csrf_token": csrf(page), "action": "done"})
    assert refused.status_code == 404
    assert await listed_done(web, p) == []


async def listed_done(web: httpx.AsyncClient, p: str) -> list[tuple[str, str]]:
    await sign_in(web, next="/inbox")
    done = await web.get("/inbox", params={"status": "done"}, headers=HTML)
    return [item for item in listed(done) if item[0].startswith(p)]
