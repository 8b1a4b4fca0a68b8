"""The inbox in headless Chromium, against the real app served over HTTP on
loopback with a worker: a guest's web-chat message appears in an open inbox
within 2 s (Server-Sent Events) with the count in the page title, and a staff
reply from the inbox appears in the guest's open chat within one poll. Then
axe-core (WCAG 2.1 AA) finds nothing on the inbox, a conversation, the panel
and the dashboard at phone (390 px) and desktop (1280 px) widths.

axe-core is the npm package pinned in tests/browser/axe/package-lock.json
(with its integrity hash), installed by `.ci/run` (`npm ci`); it is injected
into each page by the DevTools protocol, past the pages' CSP.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import async_playwright

from api.guest.chat import POLL_SECONDS
from guest_journey.guest_links import Purpose, make_token
from tests.api.test_reservations import reservation_body
from tests.api.test_staff_pages import OPS, RES
from tests.browser.test_staff_pages_in_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    site,
    wait_for_messages,
)
from tests.workflows.journeys import end, now

__all__ = ["site"]

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
APPEAR_WITHIN = 2.0


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: run `npm ci --prefix tests/browser/axe` (as .ci/run does)")
    return AXE.read_text()


async def axe_violations(page: Any, source: str) -> list[dict[str, Any]]:
    """What axe-core finds against WCAG 2.1 A and AA on the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(source)
    found: list[dict[str, Any]] = await page.evaluate(
        """async (tags) => {
            const result = await window.axe.run(document, {runOnly: {type: "tag", values: tags}});
            return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                                                  nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" "))}));
        }""",
        WCAG_21_AA,
    )
    return found


async def signed_in_page(browser: Any, base: str, viewport: dict[str, int]) -> Any:
    context = await browser.new_context(locale="pt-BR", viewport=viewport)
    page = await context.new_page()
    await page.goto(f"{base}/login?next=/inbox")
    await page.get_by_label("Chave de API").fill(OPS)
    await page.get_by_role("button", name="Entrar").click()
    await page.wait_for_url(f"{base}/inbox")
    return page


async def start_journey(env: Any, base: str) -> str:
    rid = f"R-{uuid.uuid4().hex[:6].upper()}"
    arrival = await now(env) + timedelta(days=2)
    async with httpx.AsyncClient(base_url=base, timeout=30) as api:
        body = reservation_body(arrival, phone="+5511999990000")
        created = await api.put(f"/reservations/{rid}", json=body, headers={"authorization": f"Bearer {RES}"})
        assert created.status_code == 201, created.text
        api.headers["authorization"] = f"Bearer {OPS}"
        await wait_for_messages(api, rid, 1)
    return rid


async def test_a_guest_message_appears_live_and_the_staff_reply_reaches_the_chat(env, site):
    base = site["base"]
    rid = await start_journey(env, base)
    chat_token = make_token(site["settings"].resolved_secret_key(), rid, Purpose.chat,
                            datetime.now(UTC) + timedelta(days=1))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        inbox = await signed_in_page(browser, base, WIDTHS["desktop"])
        errors: list[str] = []
        inbox.on("pageerror", lambda error: errors.append(str(error)))
        inbox.on("console", lambda note: errors.append(note.text) if note.type == "error" else None)
        assert not await inbox.locator(f'li.conversation[data-reservation="{rid}"]').count()
        await inbox.wait_for_function("document.querySelector('#inbox') !== null")

        guest = await (await browser.new_context(locale="pt-BR", viewport=WIDTHS["phone"])).new_page()
        await guest.goto(f"{base}/guest/{chat_token}/chat")
        await guest.locator("#body").fill("Vocês têm berço para o bebê?")
        started = time.perf_counter()
        await guest.locator("#composer button[type=submit]").click()
        row = inbox.locator(f'li.conversation[data-reservation="{rid}"][data-channel="webchat"]')
        await row.wait_for(timeout=APPEAR_WITHIN * 1000)
        appeared = time.perf_counter() - started
        assert appeared <= APPEAR_WITHIN, appeared
        assert "Vocês têm berço para o bebê?" in await row.inner_text()
        assert "Aguardando há" in await row.inner_text()
        await inbox.wait_for_function("/^\\(\\d+\\) Caixa de entrada/.test(document.title)")

        # Open it, reply in the same channel: the guest's open chat shows it within one poll.
        await row.get_by_role("link").click()
        await inbox.wait_for_url(f"**/inbox/{rid}/webchat")
        await inbox.get_by_label("Resposta", exact=True).fill("Temos sim! Deixamos no quarto.")
        await inbox.get_by_role("button", name="Enviar resposta").click()
        await inbox.wait_for_url("**done=reply**")
        replied = time.perf_counter()
        await guest.locator("li.message.outbound", has_text="Deixamos no quarto").wait_for(
            timeout=(POLL_SECONDS + 1) * 1000)
        assert time.perf_counter() - replied <= POLL_SECONDS + 1
        await inbox.locator("#thread .response-time").wait_for()  # the reply's response time
        await browser.close()
    await end(env, rid)
    assert not errors, errors  # no CSP violation (EventSource included) nor script error


async def test_axe_finds_nothing_on_the_inbox_the_panel_and_the_dashboard(env, site, axe_source):
    base = site["base"]
    rid = await start_journey(env, base)
    async with httpx.AsyncClient(base_url=base, timeout=30, headers={"authorization": f"Bearer {OPS}"}) as api:
        await api.post("/communications/messages/inbound", json={
            "channel": "webchat", "sender": "chat", "body": "Tem estacionamento?", "reservation_id": rid})
    found: dict[str, list[dict[str, Any]]] = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        for width, viewport in WIDTHS.items():
            page = await signed_in_page(browser, base, viewport)
            for name, path in (
                ("inbox", "/inbox"),
                ("conversation", f"/inbox/{rid}/webchat"),
                ("panel", f"/guest-experience?reservation_id={rid}"),
                ("dashboard", "/analytics"),
            ):
                await page.goto(f"{base}{path}")
                await page.wait_for_load_state("load")
                found[f"{name} at {width}"] = await axe_violations(page, axe_source)
            await page.context.close()
        await browser.close()
    await end(env, rid)
    assert found and all(not violations for violations in found.values()), {
        page: violations for page, violations in found.items() if violations}
