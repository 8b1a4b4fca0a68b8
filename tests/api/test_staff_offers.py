"""An offer staff send by hand is marketing like a scheduled one: it carries
List-Unsubscribe (RFC 2369) and List-Unsubscribe-Post (RFC 8058), and a guest who
unsubscribed does not get it. Through the API, the worker and a real SMTP server."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.api.test_reservations import reservation_body
from tests.smtp_server import SmtpTestServer
from tests.workflows.journeys import end, now
from worker import build_channels

SENDER = "Hotel Copacabana <reservas@copacabana.example>"


async def test_a_staff_offer_carries_one_click_unsubscribe_and_the_unsubscribed_get_none(
    env, worker, api, api_settings
):
    arrival = await now(env) + timedelta(days=20)  # nothing scheduled is due yet
    async with SmtpTestServer() as smtp:
        smtp_settings = api_settings.model_copy(
            update={"smtp_host": smtp.host, "smtp_port": smtp.port, "email_from": SENDER}
        )
        async with worker(build_channels(smtp_settings)):
            await api.put("/reservations/R-STAFF-OFFER-1", json=reservation_body(arrival, marketing_consent=True))
            first = await send(api, "upsell_offer", {"upsell_offer": "room_upgrade"})
            [offer] = await smtp.wait_for(1)
            unsubscribe = offer["List-Unsubscribe"]
            done = await api.post(urlsplit(unsubscribe.strip("<>")).path, data={"List-Unsubscribe": "One-Click"})
            second = await send(api, "upsell_follow_up", {"upsell_offer": "room_upgrade"})
            skipped = await skipped_staff_step(api)
            news = await send(api, "free_text", {"body": "O estacionamento é gratuito."})
            [_, transactional] = await smtp.wait_for(2)
            await end(env, "R-STAFF-OFFER-1")

    assert first["status"] == "queued"
    assert unsubscribe.startswith("<http") and "/unsubscribe>" in unsubscribe
    assert offer["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert done.status_code == 200
    assert second["status"] == "queued"
    assert skipped["reason"] == "the guest unsubscribed from offers"
    assert news["status"] == "queued"
    assert "O estacionamento é gratuito." in transactional.get_body(("plain",)).get_content()
    assert transactional["List-Unsubscribe"] is None  # a message about the stay is not marketing
    assert len(smtp.received) == 2  # the follow-up offer never left


async def send(api: httpx.AsyncClient, template: str, context: dict[str, Any]) -> dict[str, Any]:
    answer = await api.post("/communications/send", json={
        "reservation_id": "R-STAFF-OFFER-1", "template": template, "context": context,
    })
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


async def skipped_staff_step(api: httpx.AsyncClient) -> dict[str, Any]:
    """The journey's first staff (manual) step that was skipped, once there is one."""
    async with asyncio.timeout(30):
        while True:
            journey = (await api.get("/guest-experience/R-STAFF-OFFER-1")).json()
            for step in journey["steps"]:
                if step["kind"] == "manual" and step["status"] == "skipped":
                    return dict(step)
            await asyncio.sleep(0.2)
