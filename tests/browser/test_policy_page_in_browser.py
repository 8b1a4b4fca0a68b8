"""The page `/policy` in headless Chromium: an administrator signs in, opens
**Política** from the navigation, pastes a draft with a mistake and sees it with
its line, corrects it and sees the two schedules side by side. Screenshot
`policy-draft.png` with `--update-screenshots`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from guest_journey.settings import Settings
from tests.api.test_staff_pages import KEYS
from tests.browser.serving import serve
from tests.browser.test_staff_pages_in_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP
from tests.smtp_server import free_port

ADMIN = "admin-key-0123456789"
IN_FORCE = 'quiet_hours: {start: "22:00", end: "08:00"}\nhotels:\n  copacabana: {hotel_name: Copacabana Beach}\n'


@pytest.fixture
async def base(env, settings: Settings, tmp_path: Path) -> AsyncIterator[str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(IN_FORCE)
    app_settings = settings.model_copy(update={
        "temporal_address": env.client.service_client.config.target_host, "policy_file": policy,
        "public_base_url": f"http://127.0.0.1:{free_port()}", "api_keys": KEYS,
    })
    async for url in serve(app_settings):
        yield url


async def test_an_administrator_tries_a_draft_policy_in_a_browser(base, screenshots):
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = await (await browser.new_context(locale="pt-BR", **DESKTOP)).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        await page.goto(f"{base}/guest-experience")
        await page.get_by_label("Chave de API").fill(ADMIN)
        await page.get_by_role("button", name="Entrar").click()
        await page.wait_for_url(f"{base}/guest-experience")
        await page.get_by_role("link", name="Política").click()
        await page.wait_for_url(f"{base}/policy")
        assert await page.locator("#in-force-copacabana").count() == 1

        draft = page.get_by_label("Rascunho (YAML, o arquivo inteiro)")
        await draft.fill(IN_FORCE + "checkin_invite_before_arrival: 96h\n")
        await page.get_by_role("button", name="Comparar").click()
        assert "linha 4: checkin_invite_before_arrival" in await page.locator("#problems").inner_text()

        await draft.fill(IN_FORCE + "checkin_invite_before_arrival: P4D\n")
        await page.get_by_role("button", name="Comparar").click()
        invitation = page.locator('#schedules tr[data-key="checkin_invitation"]')
        assert "muda de horário" in await invitation.inner_text()
        assert "Nenhum passo não enviado mudaria" in await page.locator("#live").inner_text()
        await page.screenshot(path=str(screenshots / "policy-draft.png"), full_page=True)
        assert errors == []
        await browser.close()
