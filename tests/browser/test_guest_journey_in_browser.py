"""A guest's whole journey in headless Chromium, against the real app served
over HTTP on loopback, a worker, and a real SMTP server: the guest opens the
links from the e-mails, checks in, accepts an offer, chats with the hotel and
answers the feedback form; the journey shows each outcome. Screenshots of
each page at phone width are taken (kept in docs/screenshots/ with --update-screenshots).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import async_playwright

from guest_journey.guest_links import Purpose, make_token
from guest_journey.settings import Settings
from tests.api.test_guest_pages import POLICY
from tests.browser.serving import serve
from tests.smtp_server import SmtpTestServer, free_port
from tests.workflows.journeys import end, now
from worker import build_channels, build_worker

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


@pytest.fixture
async def site(env, settings: Settings, sessions, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    async with SmtpTestServer() as smtp:
        app_settings = settings.model_copy(update={
            "temporal_address": env.client.service_client.config.target_host,
            "policy_file": policy,
            "public_base_url": f"http://127.0.0.1:{free_port()}",
            "smtp_host": smtp.host, "smtp_port": smtp.port,
            "email_from": "Hotel Copacabana <reservas@copacabana.example>",
        })
        worker = build_worker(env.client, app_settings, sessions, build_channels(app_settings))
        async with worker:
            async for base in serve(app_settings):
                yield {"base": base, "smtp": smtp, "settings": app_settings}


def link_in(message: EmailMessage, pattern: str) -> str:
    text = message.get_body(("plain",)).get_content()
    links = re.findall(r"http://127\.0\.0\.1:\d+/guest/[^\s<>\"]+", text)
    matching = [link for link in links if re.search(pattern, link)]
    assert matching, text
    return matching[0]


async def wait_for_mail(smtp: SmtpTestServer, pattern: str, timeout: float = 30) -> EmailMessage:
    deadline = time.monotonic() + timeout
    count = 1
    while True:
        received = await smtp.wait_for(count, timeout=max(deadline - time.monotonic(), 0.1))
        for message in received:
            if re.search(pattern, message.get_body(("plain",)).get_content()):
                return message
        count = len(received) + 1


async def shot(folder: Path, page: Any, name: str) -> None:
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


async def test_a_guest_goes_through_the_journey_in_a_browser(env, site, screenshots):
    base, smtp = site["base"], site["smtp"]
    rid = f"R-WEB-{int(time.time() * 1000) % 10**8}"
    arrival = await now(env) + timedelta(days=2)
    reservation = {
        "hotel_id": "hotel-1",
        "guest": {"name": "Ana Souza", "email": "ana@example.com", "language": "pt-BR", "marketing_consent": True},
        "arrival": arrival.isoformat(), "departure": (arrival + timedelta(days=2)).isoformat(), "room_type": "deluxe",
    }
    timings: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as api, async_playwright() as pw:
        assert (await api.put(f"/reservations/{rid}", json=reservation)).status_code == 201
        invitation = await wait_for_mail(smtp, r"/check-in")
        offer_mail = await wait_for_mail(smtp, r"answer=accept")

        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = await browser.new_context(locale="pt-BR", **PHONE)
        page = await context.new_page()
        errors: list[str] = []
        failed: list[tuple[int, str]] = []
        page.on("console", lambda message: errors.append(message.text)
                if message.type == "error" and "Failed to load resource" not in message.text else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("response", lambda response: failed.append((response.status, response.url))
                if response.status >= 400 else None)

        # Check-in: the link from the invitation e-mail.
        started = time.perf_counter()
        await page.goto(link_in(invitation, r"/check-in$"))
        timings["check-in page"] = time.perf_counter() - started
        assert await page.locator("h1").inner_text() == "Check-in online"
        await shot(screenshots, page, "checkin")
        await page.get_by_role("button", name="Concluir check-in").click()
        await page.wait_for_selector("#error-summary")
        assert await page.locator("#eta-error").inner_text() == "Preencha este campo."
        await shot(screenshots, page, "checkin-errors")
        await page.get_by_label("Horário previsto de chegada").fill("15:30")
        await page.get_by_label("Tipo de documento").select_option("passport")
        await page.get_by_label("Número do documento").fill("AB1234567")
        await page.get_by_label("Nacionalidade").select_option("BR")
        await page.get_by_label("Data de nascimento").fill("1990-05-01")
        await page.get_by_label("Rua e número").fill("Rua das Flores, 10")
        await page.get_by_label("Cidade").fill("São Paulo")
        await page.get_by_label("País de residência").select_option("BR")
        await page.get_by_label("Cama", exact=True).select_option("double")
        await page.get_by_label("Vegetariana").check()
        await page.get_by_label("Algo mais que devemos saber?").fill("Chego tarde <b>hoje</b>")
        await page.get_by_label("Aceito as condições").check()
        await page.get_by_label("Assinatura").fill("Ana Souza")
        await page.get_by_role("button", name="Concluir check-in").click()
        await page.wait_for_selector("text=Check-in concluído")
        assert "terminado em 4567" in await page.content()
        await shot(screenshots, page, "checkin-done")

        # Offer: the accept link from the offer e-mail asks to confirm, then answers once.
        await page.goto(link_in(offer_mail, r"answer=accept"))
        assert "Confirme: você quer Upgrade de quarto?" in await page.content()
        assert await page.locator(".price").inner_text() == "Preço: R$\xa0120,00"
        await shot(screenshots, page, "offer")
        await page.get_by_role("button", name="Sim, quero").click()
        await page.wait_for_selector("text=Você aceitou esta oferta")
        await shot(screenshots, page, "offer-accepted")

        # Chat: from the page footer; the message is sent and the reply appears without a reload.
        await page.get_by_role("link", name="Dúvidas? Converse com o hotel").click()
        await page.wait_for_selector("text=Nenhuma mensagem ainda.")
        await page.get_by_label("Sua mensagem").fill("Posso levar meu cachorro? <script>x</script>")
        await page.get_by_role("button", name="Enviar").click()
        await page.wait_for_selector("li.message.inbound >> text=Posso levar meu cachorro?")
        chat_url = page.url
        sent = await api.post("/communications/send", json={
            "reservation_id": rid, "template": "free_text", "channel": "webchat",
            "context": {"body": "Claro! Pets são bem-vindos."},
        })
        assert sent.status_code == 202, sent.text
        started = time.perf_counter()
        await page.wait_for_selector("li.message.outbound >> text=Pets são bem-vindos", timeout=20_000)
        timings["staff reply shown"] = time.perf_counter() - started
        assert page.url == chat_url  # no reload
        await shot(screenshots, page, "chat")

        # Feedback: after the stay, the link from the feedback e-mail.
        for event in ("checked_in", "checked_out"):
            assert (await api.post(f"/reservations/{rid}/events", json={"type": event})).status_code == 200
        requested = await api.post("/communications/send", json={
            "reservation_id": rid, "template": "guest_post_stay_feedback", "channel": "email"})
        assert requested.status_code == 202, requested.text
        feedback_mail = await wait_for_mail(smtp, r"/feedback")
        await page.goto(link_in(feedback_mail, r"/feedback$"))
        await shot(screenshots, page, "feedback")
        await page.locator("label[for=satisfaction-8]").click()
        await page.locator("label[for=score-9]").click()
        await page.get_by_label("Conte mais").fill("Equipe ótima!")
        await page.get_by_role("button", name="Enviar").click()
        await page.wait_for_selector("text=Obrigado pela sua avaliação")
        await shot(screenshots, page, "feedback-thanks")

        # An expired link, switched to English on the page.
        expired = make_token(site["settings"].resolved_secret_key(), rid, Purpose.checkin,
                             datetime.now(UTC) - timedelta(days=1))
        await page.goto(f"{base}/guest/{expired}/check-in")
        assert await page.locator("h1").inner_text() == "Este link expirou"
        await page.get_by_role("link", name="English").click()
        assert await page.locator("h1").inner_text() == "This link has expired"
        await shot(screenshots, page, "error-expired")

        journey = (await api.get(f"/guest-experience/{rid}")).json()
        await browser.close()
    if journey["stage"] not in ("completed", "cancelled"):
        await end(env, rid)

    assert not errors, errors  # no CSP violation or script error in the console
    assert {status for status, _ in failed} <= {410, 422}, failed  # the error form and the expired link only
    assert journey["checkin"]["status"] == "completed"
    assert journey["checkin"]["details"]["document_number"] == "*****4567"
    assert journey["preferences"]["bed"] == "double"
    assert {u["offer"]: u["status"] for u in journey["upsells"]}["room_upgrade"] == "accepted"
    inbound = [m for m in journey["messages"] if m["direction"] == "inbound"]
    assert [m["channel"] for m in inbound] == ["webchat"]
    assert journey["feedback"]["status"] == "received" and journey["feedback"]["score"] == 9
    assert journey["feedback"]["satisfaction"] == 8
    steps = {step["key"]: step for step in journey["steps"]}
    assert steps["checkin_reminder:PT24H"]["status"] == "skipped"
    for name, seconds in timings.items():
        assert seconds < 10, (name, seconds)
