"""From the reservation system's PUT to a real SMTP server: the invitation arrives."""

from __future__ import annotations

from datetime import timedelta

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
