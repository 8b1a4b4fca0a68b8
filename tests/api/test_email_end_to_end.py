"""From the reservation system's PUT to a real SMTP server: the invitation arrives."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.api.conftest import app_client
from tests.api.test_reservations import reservation_body
from tests.smtp_server import SmtpTestServer
from tests.workflows.journeys import end, now
from worker import build_channels


async def test_a_new_reservation_gets_its_check_in_invitation_by_email(env, worker, api, api_settings):
    arrival = await now(env) + timedelta(days=2)
    async with SmtpTestServer() as smtp:
        smtp_settings = api_settings.model_copy(
            update={"smtp_host": smtp.host, "smtp_port": smtp.port,
                    "email_from": "Hotel Copacabana <reservas@copacabana.example>"}
        )
        async with worker(build_channels(smtp_settings)):
            answer = await api.put("/reservations/R-E2E-1", json=reservation_body(arrival))
            assert answer.status_code == 201
            [invitation] = await smtp.wait_for(1)
            await end(env, "R-E2E-1")  # returns once the journey has recorded everything
            journey = (await api.get("/guest-experience/R-E2E-1")).json()

    assert smtp.envelopes[0].rcpt_tos == ["ana@example.com"]
    assert invitation["To"].addresses[0].addr_spec == "ana@example.com"
    assert invitation["Subject"] == "Faça seu check-in online antes de chegar"  # pt-BR, the guest's language
    text = invitation.get_body(("plain",)).get_content()
    html = invitation.get_body(("html",)).get_content()
    assert "/guest/" in text and "/check-in" in text  # the link to the check-in page
    assert "/check-in" in html
    message = journey["messages"][0]
    assert message["template"] == "checkin_invitation" and message["status"] == "sent"
    assert invitation["Message-ID"] == f"<{message['id']}@copacabana.example>"


async def test_smtp_down_for_a_while_then_up_delivers_the_message_once(env, worker, api, api_settings, tmp_path):
    policy = tmp_path / "fast-retry.yaml"
    policy.write_text("quiet_hours: null\ndelivery: {first_retry_after: PT1S, max_retry_interval: PT1S}\n")
    arrival = await now(env) + timedelta(days=2)
    smtp = SmtpTestServer()  # not started yet: the port refuses connections
    smtp_settings = api_settings.model_copy(update={"smtp_host": smtp.host, "smtp_port": smtp.port,
                                                    "policy_file": policy})
    async for client in app_client(smtp_settings):
        async with worker(build_channels(smtp_settings)):
            await client.put("/reservations/R-E2E-2", json=reservation_body(arrival, marketing_consent=False))
            await wait_for_attempts(client, "R-E2E-2", at_least=2)  # refused, retried
            async with smtp:
                [invitation] = await smtp.wait_for(1)
                await end(env, "R-E2E-2")
            journey = (await client.get("/guest-experience/R-E2E-2")).json()

    assert len(smtp.received) == 1
    [message] = journey["messages"]
    assert message["status"] == "sent" and invitation["Message-ID"].startswith(f"<{message['id']}@")


async def wait_for_attempts(client, reservation_id: str, at_least: int) -> None:  # type: ignore[no-untyped-def]
    """Wait until the message store shows failed attempts (the reason names the attempt)."""
    async with asyncio.timeout(30):
        while True:
            journey = (await client.get(f"/guest-experience/{reservation_id}")).json()
            reasons = [m.get("reason") or "" for m in journey.get("messages", [])]
            if any(f"attempt {at_least}" in reason for reason in reasons):
                return
            await asyncio.sleep(0.2)
