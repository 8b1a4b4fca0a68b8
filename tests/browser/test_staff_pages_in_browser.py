"""The staff pages in headless Chromium, against the real app served over
HTTP on loopback with a worker: sign in, type a reservation in **Reserva**,
click **Carregar**, see the timeline, resend a message and see it appear,
record the guest's reply, answer in the web chat; then the dashboard's card
**Jornada digital** shows figures that match the data behind it.
Screenshots (ops-*.png, analytics-*.png) are kept in docs/screenshots/ with
`--update-screenshots`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import async_playwright

from guest_journey.journeys import Stage, Upsell, UpsellStatus
from guest_journey.settings import Settings
from tests.api.test_reservations import reservation_body
from tests.api.test_staff_pages import KEYS, OPS, RES, message, seed, view
from tests.browser.serving import serve
from tests.smtp_server import free_port
from tests.workflows.journeys import end, now
from worker import build_channels, build_worker

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
DESKTOP = {"viewport": {"width": 1360, "height": 900}, "device_scale_factor": 1}
HOTEL = "hotel-copacabana"


@pytest.fixture
async def site(env, settings: Settings, sessions, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text("quiet_hours: null\n")
    app_settings = settings.model_copy(update={
        "temporal_address": env.client.service_client.config.target_host,
        "policy_file": policy,
        "public_base_url": f"http://127.0.0.1:{free_port()}",
        "api_keys": KEYS,
    })
    async with build_worker(env.client, app_settings, sessions, build_channels(app_settings)):
        async for base in serve(app_settings):
            yield {"base": base, "settings": app_settings}


def local_day(days_ago: int, hour: float) -> datetime:
    today = datetime.now(UTC).astimezone(SAO_PAULO).date()
    start = datetime(today.year, today.month, today.day, tzinfo=SAO_PAULO) - timedelta(days=days_ago)
    return start + timedelta(hours=hour)


async def seed_a_fortnight(sessions) -> dict[str, float]:
    """Thirteen past days of one hotel: two answers, three offers, two staff replies
    and some failed e-mails a day. Returns the card's figures, computed here."""
    views, messages = [], []
    scores, satisfied, offered, accepted, minutes, arrived, checked_in = [], [], 0, 0, [], 0, 0
    for day in range(1, 14):
        for n, score in enumerate((6 + (day * 3) % 5, 10 - day % 4)):
            rid = f"{HOTEL}-D{day}-{n}"
            done = n == 0 or day % 3 == 0
            upsells = [
                Upsell(offer="room_upgrade", offered_at=local_day(day, 9),
                       status=UpsellStatus.accepted if n == 0 and day % 2 == 0 else UpsellStatus.declined),
                Upsell(offer="late_checkout", status=UpsellStatus.offered, offered_at=local_day(day, 9)),
            ][: 2 - n]
            views.append(view(rid, hotel_id=HOTEL, arrival=local_day(day, 14), stage=Stage.post_stay, checkin=done,
                              score=score, satisfaction=(score + day) % 11, scored_at=local_day(day, 20 + n),
                              upsells=upsells, nights=1))
            scores.append(score)
            satisfied.append((score + day) % 11)
            offered += len(upsells)
            accepted += sum(1 for upsell in upsells if upsell.status is UpsellStatus.accepted)
            arrived += 1
            checked_in += done
            wait = 3 + (day * 5 + n * 7) % 11
            minutes.append(wait)
            messages += [
                message(f"{rid}-in", rid, "inbound", "received", local_day(day, 15 + n), hotel_id=HOTEL,
                        channel="whatsapp", body="Vocês têm berço?"),
                message(f"{rid}-re", rid, "outbound", "delivered", local_day(day, 15 + n) + timedelta(minutes=wait),
                        hotel_id=HOTEL, channel="whatsapp", in_reply_to=f"{rid}-in", step_key=f"manual:{day}{n}"),
                message(f"{rid}-em", rid, "outbound", "failed" if (day + n) % 6 == 0 else "delivered",
                        local_day(day, 10), hotel_id=HOTEL, template="checkin_invitation",
                        reason="mailbox full" if (day + n) % 6 == 0 else None),
            ]
    await seed(sessions, views, messages)
    promoters = sum(1 for score in scores if score >= 9)
    detractors = sum(1 for score in scores if score <= 6)
    return {
        "satisfaction": sum(satisfied) / len(satisfied),
        "nps": 100 * (promoters - detractors) / len(scores),
        "conversion": accepted / offered,
        "minutes": sum(minutes) / len(minutes),
        "adoption": checked_in / arrived,
    }


def pt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}".replace(".", ",")


class Shots:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def take(self, page: Any, name: str, locator: Any | None = None) -> None:
        path = str(self.folder / f"{name}.png")
        if locator is not None:
            await locator.screenshot(path=path)
        else:
            await page.screenshot(path=path, full_page=True)


async def wait_for_messages(api: httpx.AsyncClient, rid: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        journey = (await api.get(f"/guest-experience/{rid}")).json()
        if len([m for m in journey.get("messages", []) if m["sent_at"] or m["status"] != "queued"]) >= count:
            return
        assert time.monotonic() < deadline, str(journey)
        await asyncio.sleep(0.2)


async def test_staff_use_the_panel_and_the_dashboard_in_a_browser(env, site, sessions, screenshots):
    shot = Shots(screenshots).take
    base = site["base"]
    rid = f"R-{uuid.uuid4().hex[:6].upper()}"
    expected = await seed_a_fortnight(sessions)
    t = datetime.now(UTC)
    await seed(sessions, [
        view("R-ATRASADA", hotel_id="hotel-ipanema", arrival=t - timedelta(hours=3)),
        view("R-CHECKIN", hotel_id="hotel-ipanema", arrival=t + timedelta(hours=9)),
    ], [
        message("x-wait", "R-CHECKIN", "inbound", "received", t - timedelta(minutes=25), hotel_id="hotel-ipanema",
                channel="whatsapp", body="Meu voo atrasou, tudo bem chegar à meia-noite?"),
        message("x-doubt", "R-CHECKIN", "outbound", "in_doubt", t - timedelta(minutes=20), hotel_id="hotel-ipanema",
                template="checkin_invitation", step_key="checkin_invitation",
                reason="SMTP: tempo esgotado depois do envio"),
    ])
    arrival = await now(env) + timedelta(days=2)
    ops = httpx.AsyncClient(base_url=base, timeout=30, headers={"authorization": f"Bearer {OPS}"})
    reservations = httpx.AsyncClient(base_url=base, timeout=30, headers={"authorization": f"Bearer {RES}"})
    async with ops, reservations, async_playwright() as pw:
        body = reservation_body(arrival, marketing_consent=True, phone="+5511999990000")
        assert (await reservations.put(f"/reservations/{rid}", json=body)).status_code == 201
        await wait_for_messages(ops, rid, 2)

        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = await browser.new_context(locale="pt-BR", **DESKTOP)
        page = await context.new_page()
        errors: list[str] = []
        failed: list[tuple[int, str]] = []
        page.on("console", lambda note: errors.append(note.text)
                if note.type == "error" and "Failed to load resource" not in note.text else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("response", lambda response: failed.append((response.status, response.url))
                if response.status >= 400 else None)

        # Sign in: the panel sends the browser to /login and back.
        await page.goto(f"{base}/guest-experience")
        assert page.url.startswith(f"{base}/login?next=")
        await shot(page, "ops-login")
        await page.get_by_label("Chave de API").fill(OPS)
        await page.get_by_role("button", name="Entrar").click()
        await page.wait_for_url(f"{base}/guest-experience")

        # Reserva + Carregar: the journey and its timeline.
        await page.get_by_label("Reserva", exact=True).fill(rid)
        await page.get_by_role("button", name="Carregar").click()
        await page.wait_for_selector("#timeline li.message")
        timeline = page.locator("#timeline li.message")
        assert await timeline.count() == 2
        assert await page.locator("#stage").inner_text() == "Pré-chegada"
        invitation = page.locator('#timeline li.message[data-template="checkin_invitation"]')
        assert "Convite de check-in" in await invitation.inner_text()
        assert await page.locator("#temporal-link").get_attribute("href") == (
            f"http://127.0.0.1:8233/namespaces/default/workflows/journey-{rid}")
        await shot(page, "ops-panel")

        # Resend the invitation: it appears in the timeline.
        await invitation.get_by_role("button", name="Reenviar").click()
        await page.wait_for_url("**done=sent**")
        await page.get_by_text("Mensagem enviada pela jornada").wait_for()
        await page.wait_for_function(
            "document.querySelectorAll('#timeline li.message[data-template=checkin_invitation]').length === 2")
        await page.wait_for_function(
            "document.querySelectorAll('#timeline li.message[data-template=checkin_invitation]:not(.pending)')"
            ".length === 2", timeout=20_000)
        await shot(page, "ops-resend")

        # The guest answered by phone: record it, in reply to our last message.
        await page.get_by_label("O que o hóspede escreveu").fill("Posso fazer o check-in às 11h?")
        await page.get_by_role("button", name="Registrar resposta").click()
        await page.get_by_text("Resposta do hóspede registrada").wait_for()
        guest_reply = page.locator("#timeline li.message.inbound")
        assert "Posso fazer o check-in às 11h?" in await guest_reply.inner_text()
        assert "Em resposta a Convite de check-in" in await guest_reply.inner_text()

        # Answer in the web chat.
        await page.get_by_label("Resposta no chat").fill("Claro! Deixamos o quarto pronto às 11h.")
        await page.get_by_role("button", name="Responder no chat").click()
        await page.get_by_text("Resposta enviada no chat web").wait_for()
        chat = page.locator('#timeline li.message[data-channel="webchat"]')
        await chat.wait_for()
        assert "Deixamos o quarto pronto" in await chat.inner_text()
        assert await timeline.count() == 5
        await shot(page, "ops-actions")

        # The journeys that need attention.
        attention = page.locator("#attention")
        assert "R-ATRASADA" in await page.locator("#attention-stuck").inner_text()
        assert "R-CHECKIN" in await page.locator("#attention-checkin_pending").inner_text()
        assert "Meu voo atrasou" in await page.locator("#attention-unanswered").inner_text()
        assert "mailbox full" in await page.locator("#attention-failed_message").inner_text()
        in_doubt = page.locator("#attention-in_doubt")
        assert "Convite de check-in por E-mail: SMTP: tempo esgotado" in await in_doubt.inner_text()
        assert await in_doubt.get_by_role("button", name="Enviar novamente").is_visible()
        await shot(page, "ops-attention", attention)

        # An unknown reservation: a clear message on the page.
        await page.get_by_label("Reserva", exact=True).fill("R-NAO-EXISTE")
        await page.get_by_role("button", name="Carregar").click()
        await page.get_by_text("Nenhuma jornada encontrada para a reserva “R-NAO-EXISTE”").wait_for()
        assert await page.get_by_label("Reserva", exact=True).input_value() == "R-NAO-EXISTE"
        await shot(page, "ops-unknown")

        # The dashboard: the card Jornada digital matches the seeded fortnight.
        await page.get_by_role("link", name="Analytics").click()
        await page.wait_for_url(f"{base}/analytics")
        await page.get_by_label("Hotel", exact=True).select_option(HOTEL)
        await page.get_by_role("button", name="Aplicar").click()
        await page.wait_for_url(f"**hotel_id={HOTEL}**")
        assert "Ainda não medido" in await page.locator("#measured-at").inner_text()  # the page only reads
        await page.get_by_role("button", name="Medir agora").click()  # the KPI schedule's workflow, now
        await page.locator("#measured-at", has_text="Medido às").wait_for()
        card = page.locator("#jornada-digital")
        assert await card.locator("h2").inner_text() == "Jornada digital"
        figures = {key: await page.locator(f"#kpi-{key} .number").inner_text()
                   for key in ("satisfaction", "nps", "upsell", "response")}
        assert figures["satisfaction"] == pt(expected["satisfaction"], 2)
        assert figures["upsell"].replace("\xa0", " ") == pt(expected["conversion"] * 100, 1) + " %"
        assert figures["response"] == pt(expected["minutes"], 1)
        nps = round(expected["nps"])
        assert figures["nps"] == f"{'+' if nps > 0 else ''}{nps}"
        assert "26 respostas" in await page.locator("#kpi-satisfaction").inner_text()
        adoption = await page.locator("#checkin-adoption .number").inner_text()
        assert adoption.replace("\xa0", " ") == pt(expected["adoption"] * 100, 1) + " %"
        assert await card.locator("svg.chart").count() == 4
        await shot(page, "analytics-dashboard")

        await page.get_by_label("Janela", exact=True).select_option("week")
        await page.get_by_role("button", name="Aplicar").click()
        await page.wait_for_url("**window=week**")
        assert await page.locator("#kpi-satisfaction .number").inner_text() == pt(expected["satisfaction"], 2)
        await shot(page, "analytics-week")
        await browser.close()
    await end(env, rid)

    assert not errors, errors  # no CSP violation or script error
    assert {status for status, _ in failed} <= {404}, failed  # the unknown reservation only
