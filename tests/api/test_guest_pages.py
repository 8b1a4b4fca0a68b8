"""The guest pages through HTTP: signed links, check-in, offers, feedback and
web chat, each outcome read back from the journey, and every error path."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.app import create_app
from api.guest import feedback as feedback_page
from communications.channels.webchat import WebchatSender
from guest_journey.guest_links import GuestLinks, Purpose, make_token
from guest_journey.journeys import workflow_id_for
from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from tests.api.test_reservations import reservation_body
from tests.workflows.journeys import end, now

POLICY = """\
quiet_hours: null
public_review_url: https://reviews.example/hotel-1
upsell_offers:
  - {offer: room_upgrade, send_before_arrival: PT48H, price: "120.00", currency: BRL}
  - {offer: late_checkout, send_before_departure: PT20H, follow_up_after: PT4H, price: "45.5", currency: EUR}
"""
GOOD_CHECKIN = {
    "eta": "15:30", "document_type": "passport", "document_number": "ab 123-4567", "nationality": "BR",
    "date_of_birth": "1990-05-01", "address_line": "Rua das Flores, 10", "city": "São Paulo",
    "postal_code": "01000-000", "country": "BR", "bed": "double", "pillow": "firm",
    "dietary": ["vegetarian", "gluten_free"], "accessibility": ["step_free"], "notes": "Late flight",
    "marketing": "yes", "terms": "yes", "signature": "Ana Souza",
}


def guest_app(settings: Settings) -> FastAPI:
    """The app, guest pages included."""
    return create_app(settings)


@pytest.fixture
def guest_settings(api_settings: Settings, tmp_path: Path) -> Settings:
    policy = tmp_path / "guest-policy.yaml"
    policy.write_text(POLICY)
    return api_settings.model_copy(update={"policy_file": policy})


@pytest.fixture
async def app(guest_settings: Settings) -> AsyncIterator[FastAPI]:
    application = guest_app(guest_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def web(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://guest-journey.test") as client:
        yield client


class Links:
    def __init__(self, settings: Settings) -> None:
        self.secret = settings.resolved_secret_key()
        self._links = GuestLinks("", self.secret)

    def of(self, reservation_id: str, departure: datetime, offer: str | None = None) -> dict[str, str]:
        return self._links.for_message(reservation_id, departure, offer)

    def token(self, reservation_id: str, purpose: Purpose, expires_at: datetime) -> str:
        return make_token(self.secret, reservation_id, purpose, expires_at)


@pytest.fixture
def rid() -> str:
    """A reservation id of this test's own: journeys live on in the shared test server."""
    return f"R-GP-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def links(guest_settings: Settings) -> Links:
    return Links(guest_settings)


async def book(web: httpx.AsyncClient, env: Any, rid: str, *, days: float = 3, **guest: Any) -> datetime:
    """A reservation arriving in `days`; its departure."""
    arrival = await now(env) + timedelta(days=days)
    body = reservation_body(arrival, **guest)
    answer = await web.put(f"/reservations/{rid}", json=body)
    assert answer.status_code == 201, answer.text
    return datetime.fromisoformat(body["departure"])


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def request_id(page: httpx.Response) -> str:
    found = re.search(r'name="request_id" value="([0-9a-f]{32})"', page.text)
    assert found
    return found.group(1)


async def journey(web: httpx.AsyncClient, rid: str) -> dict[str, Any]:
    answer = await web.get(f"/guest-experience/{rid}")
    assert answer.status_code == 200, answer.text
    return answer.json()


async def post_form(web: httpx.AsyncClient, path: str, page: httpx.Response, fields: dict[str, Any],
                    **headers: str) -> httpx.Response:
    data = {"csrf_token": csrf(page), **fields}
    return await web.post(path, data=data, headers=headers)


# -- links and errors ---------------------------------------------------------------


async def test_check_in_page_is_in_the_guests_language_with_safe_headers(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid)
        page = await web.get(links.of(rid, departure)["checkin_url"])
        await end(env, rid)
    assert page.status_code == 200
    assert '<html lang="pt-BR">' in page.text
    assert "Check-in online" in page.text and "Olá, Ana!" in page.text
    assert "Horário previsto de chegada" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script
    assert "guest_csrf" in page.headers["set-cookie"]


@pytest.mark.parametrize("consented", [True, False])
async def test_the_consent_box_starts_as_the_guest_left_it_at_booking(env, worker, web, links, rid, consented):
    """An untouched box keeps the booking's answer: the form's answer outranks the PMS's."""
    async with worker():
        departure = await book(web, env, rid, marketing_consent=consented)
        page = await web.get(links.of(rid, departure)["checkin_url"])
        await end(env, rid)
    box = re.search(r'<input id="marketing"[^>]*>', page.text)
    assert box is not None
    assert ("checked" in box.group(0)) is consented


async def test_language_is_switchable_and_remembered(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid, language="en")
        url = links.of(rid, departure)["checkin_url"]
        english = await web.get(url)
        spanish = await web.get(url + "?lang=es")
        again = await web.get(url)
        await end(env, rid)
    assert "Online check-in" in english.text
    assert 'hreflang="es"' in english.text and "Español" in english.text
    assert "Check-in en línea" in spanish.text and '<html lang="es">' in spanish.text
    assert "Check-in en línea" in again.text  # the cookie keeps the choice


@pytest.mark.parametrize(
    ("make", "status", "words"),
    [
        (lambda links, dep, rid: "not-a-token", 403, "This link does not work"),
        (lambda links, dep, rid: links.token(rid, Purpose.checkin, dep)[:-3] + "abc", 403, "This link does not work"),
        (lambda links, dep, rid: links.token(rid, Purpose.feedback, dep), 403, "This link does not work"),
        (lambda links, dep, rid: links.token("R-NOBODY", Purpose.checkin, dep), 404, "We could not find this reservation"),
    ],
    ids=["garbage", "tampered", "other-purpose", "unknown-reservation"],
)
async def test_bad_links_get_a_friendly_page(env, worker, web, links, make, status, words, rid):
    departure = datetime.now(UTC) + timedelta(days=5)
    async with worker():
        await book(web, env, rid)
        answer = await web.get(f"/guest/{make(links, departure, rid)}/check-in", headers={"accept-language": "en"})
        await end(env, rid)
    assert answer.status_code == status
    assert words in answer.text
    assert "Traceback" not in answer.text and answer.headers["content-type"].startswith("text/html")


async def test_an_expired_link_says_so_in_the_guests_language(env, worker, web, links, rid):
    async with worker():
        await book(web, env, rid, language="es")
        token = links.token(rid, Purpose.checkin, datetime.now(UTC) - timedelta(minutes=1))
        answer = await web.get(f"/guest/{token}/check-in")
        await end(env, rid)
    assert answer.status_code == 410
    assert "Este enlace ha caducado" in answer.text


async def test_a_token_longer_than_any_we_make_is_refused(web):
    answer = await web.get(f"/guest/{'a' * 600}/check-in")
    assert answer.status_code == 403
    assert "This link does not work" in answer.text


async def test_temporal_down_gives_a_friendly_503(guest_settings, links):
    app = guest_app(guest_settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    token = links.token("R-GP-DOWN", Purpose.checkin, datetime.now(UTC) + timedelta(days=3))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=transport, base_url="http://guest-journey.test"
    ) as client:
        answer = await client.get(f"/guest/{token}/check-in", headers={"accept-language": "pt-BR"})
    assert answer.status_code == 503
    assert "Não conseguimos acessar nosso sistema" in answer.text


async def test_an_unexpected_failure_is_a_friendly_500_without_a_trace(env, worker, app, web, links, rid):
    def broken() -> None:
        raise RuntimeError("boom in /secret/path.py")

    app.dependency_overrides[feedback_page.public_review_url] = broken
    async with worker():
        departure = await book(web, env, rid, language="en")
        answer = await web.get(links.of(rid, departure)["feedback_url"])
        await end(env, rid)
    assert answer.status_code == 500
    assert "Something went wrong" in answer.text
    assert "boom" not in answer.text and "Traceback" not in answer.text


# -- check-in ------------------------------------------------------------------------


async def test_check_in_completes_the_journey_step_and_a_second_submission_updates(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid)
        url = links.of(rid, departure)["checkin_url"]
        form = await web.get(url)
        sent = await post_form(web, url, form, {**GOOD_CHECKIN, "request_id": request_id(form)})
        assert sent.status_code == 303, sent.text
        done = await web.get(sent.headers["location"])
        first = await journey(web, rid)

        again = await web.get(url)
        changed = {**GOOD_CHECKIN, "document_number": "", "eta": "18:45", "bed": "twin", "dietary": []}
        resent = await post_form(web, url, again, {**changed, "request_id": request_id(again)})
        assert resent.status_code == 303, resent.text
        second = await journey(web, rid)
        await end(env, rid)

    assert done.status_code == 200
    assert "Check-in concluído" in done.text and "terminado em 4567" in done.text
    checkin = first["checkin"]
    assert checkin["status"] == "completed"
    assert checkin["details"]["document_number"] == "*****4567"
    assert "AB1234567" not in str(first)
    assert checkin["details"]["estimated_arrival"] == "15:30"
    assert checkin["details"]["address"]["city"] == "São Paulo"
    assert first["preferences"]["bed"] == "double"
    assert first["preferences"]["dietary"] == ["gluten_free", "vegetarian"]
    steps = {step["key"]: step for step in first["steps"]}
    for key in ("checkin_reminder:PT24H", "checkin_reminder:PT3H"):
        assert steps[key]["status"] == "skipped" and steps[key]["reason"] == "check-in already done"
    assert "terminado em 4567" in again.text  # the page says a document is on file
    assert 'value="15:30"' in again.text  # and shows what was sent
    assert second["checkin"]["completed_at"] == checkin["completed_at"]
    assert second["checkin"]["details"]["estimated_arrival"] == "18:45"
    assert second["checkin"]["details"]["document_number"] == "*****4567"  # kept
    assert second["preferences"]["bed"] == "twin" and second["preferences"]["dietary"] == []


async def test_a_double_submit_is_applied_once(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid)
        url = links.of(rid, departure)["checkin_url"]
        form = await web.get(url)
        fields = {**GOOD_CHECKIN, "request_id": request_id(form)}
        await post_form(web, url, form, fields)
        first = (await journey(web, rid))["checkin"]
        repeat = await post_form(web, url, form, fields)
        after = (await journey(web, rid))["checkin"]
        await end(env, rid)
    assert repeat.status_code == 303
    assert after == first  # same completion time, same details: applied once


async def test_invalid_check_in_shows_messages_next_to_fields_and_keeps_values(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid, language="en")
        url = links.of(rid, departure)["checkin_url"]
        form = await web.get(url)
        bad = {
            **GOOD_CHECKIN, "eta": "25:99", "document_number": "x!", "nationality": "QQ",
            "date_of_birth": "2015-02-30", "city": "", "terms": "", "signature": "1",
            "notes": "<script>alert(1)</script>", "address_line": "Rua <b>Bold</b>", "bed": "waterbed",
        }
        answer = await post_form(web, url, form, bad)
        minor = await post_form(web, url, form, {**GOOD_CHECKIN, "date_of_birth": "2015-01-01"})
        state = await journey(web, rid)
        await end(env, rid)
    assert answer.status_code == 422
    html = answer.text
    assert "Please check the fields marked below." in html
    for field_id, message in [
        ("eta", "Enter a time such as 15:30."), ("document_number", "Use 4 to 20 letters or digits."),
        ("nationality", "Please choose one of the options."), ("date_of_birth", "Enter a valid date."),
        ("city", "Please fill this in."), ("terms", "Please accept the terms to check in."),
        ("signature", "Type your full name (at least 2 letters) to sign."), ("bed", "Please choose one of the options."),
    ]:
        assert f'<p class="error" id="{field_id}-error">{message}</p>' in html, field_id
    assert 'aria-describedby="eta-hint eta-error" aria-invalid="true"' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert 'value="Rua &lt;b&gt;Bold&lt;/b&gt;"' in html  # kept, escaped
    assert 'value="X!"' not in html  # a document number is never echoed back
    assert minor.status_code == 422 and "at least 18 years old" in minor.text
    assert state["checkin"]["status"] == "pending"


async def test_check_in_forms_need_their_csrf_token_and_a_same_origin(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid, language="en")
        url = links.of(rid, departure)["checkin_url"]
        form = await web.get(url)
        missing = await web.post(url, data=GOOD_CHECKIN)
        wrong = await web.post(url, data={**GOOD_CHECKIN, "csrf_token": "forged"})
        foreign = await post_form(web, url, form, GOOD_CHECKIN, origin="https://evil.example")
        other_link = links.token(rid + "-other", Purpose.checkin, departure)
        replayed = await web.post(f"/guest/{other_link}/check-in", data={**GOOD_CHECKIN, "csrf_token": csrf(form)})
        web.cookies.clear()
        no_cookie = await web.post(url, data={**GOOD_CHECKIN, "csrf_token": csrf(form)})
        state = await journey(web, rid)
        await end(env, rid)
    for answer in (missing, wrong, foreign, no_cookie):
        assert answer.status_code == 403
        assert "This form has expired" in answer.text
    assert replayed.status_code in (403, 404)
    assert state["checkin"]["status"] == "pending"


async def test_a_body_over_the_limit_is_refused_with_413(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid, language="en")
        url = links.of(rid, departure)["checkin_url"]
        form = await web.get(url)
        answer = await post_form(web, url, form, {**GOOD_CHECKIN, "notes": "x" * 40_000})
        json_body = await web.post(url, json=GOOD_CHECKIN)
        await end(env, rid)
    assert answer.status_code == 413
    assert "That was too much text" in answer.text
    assert json_body.status_code == 415


async def test_check_in_is_closed_for_a_cancelled_reservation(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid)
        await web.delete(f"/reservations/{rid}")
        answer = await web.get(links.of(rid, departure)["checkin_url"])
    assert answer.status_code == 410
    assert "Esta reserva foi cancelada." in answer.text


# -- offers --------------------------------------------------------------------------


async def offered(web: httpx.AsyncClient, rid: str, offer: str) -> None:
    """Wait until the journey has sent the guest `offer` (its upsell is `offered`)."""
    for _ in range(200):
        if {item["offer"]: item for item in (await journey(web, rid))["upsells"]}[offer]["status"] == "offered":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{offer} was never offered")


async def test_accepting_an_offer_goes_to_the_journey_once(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid, days=1, marketing_consent=True)  # room_upgrade goes at once
        await offered(web, rid, "room_upgrade")
        offer = links.of(rid, departure, "room_upgrade")
        shown = await web.get(offer["accept_url"])
        answered = await post_form(web, offer["offer_url"], shown, {"answer": "accept", "request_id": request_id(shown)})
        result = await web.get(answered.headers["location"])
        again = await post_form(web, offer["offer_url"], shown, {"answer": "decline"})
        state = await journey(web, rid)
        await end(env, rid)
    assert shown.status_code == 200
    assert "Upgrade de quarto" in shown.text and "R$\xa0120,00" in shown.text
    assert "Confirme: você quer Upgrade de quarto?" in shown.text
    assert answered.status_code == 303
    assert "Você aceitou esta oferta em" in result.text and "<form" not in result.text.split("<main", 1)[1]
    assert again.status_code == 409 and "Esta oferta já foi respondida." in again.text
    upsell = {item["offer"]: item for item in state["upsells"]}["room_upgrade"]
    assert upsell["status"] == "accepted" and upsell["answered_at"]


async def test_declining_in_english_shows_euros_in_english(env, worker, web, links, rid):
    async with worker():
        # In the stay, 12 h before departure: late_checkout (20 h before departure) goes at once.
        departure = await book(web, env, rid, days=-1.5, language="en", marketing_consent=True)
        await offered(web, rid, "late_checkout")
        offer = links.of(rid, departure, "late_checkout")
        shown = await web.get(offer["decline_url"])
        answered = await post_form(web, offer["offer_url"], shown, {"answer": "decline"})
        state = await journey(web, rid)
        await end(env, rid)
    assert "€45.50" in shown.text and "Please confirm: you do not want Late check-out?" in shown.text
    assert answered.status_code == 303
    steps = {step["key"]: step for step in state["steps"]}
    assert {item["offer"]: item for item in state["upsells"]}["late_checkout"]["status"] == "declined"
    assert steps["upsell_follow_up:late_checkout"]["status"] == "skipped"


async def test_offer_errors(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid, days=1, language="en", marketing_consent=True)
        await offered(web, rid, "room_upgrade")
        offer = links.of(rid, departure, "room_upgrade")
        unknown = await web.get(offer["offer_url"].replace("room_upgrade", "helicopter"))
        page = await web.get(offer["offer_url"])
        no_answer = await post_form(web, offer["offer_url"], page, {"answer": "maybe"})
        await web.post(f"/reservations/{rid}/events", json={"type": "checked_in"})
        expired = await web.get(offer["offer_url"])
        too_late = await post_form(web, offer["offer_url"], page, {"answer": "accept"})
        await end(env, rid)
    assert unknown.status_code == 404 and "This offer is not available" in unknown.text
    assert "was not sent to you" in unknown.text  # the link is for room_upgrade only
    assert no_answer.status_code == 422 and "Please choose yes or no." in no_answer.text
    assert expired.status_code == 410 and "This offer is no longer available." in expired.text
    assert too_late.status_code == 410


async def test_an_offer_link_answers_only_its_own_offer_and_only_once_offered(env, worker, web, links, rid):
    """From the room-upgrade e-mail, late check-out (planned, never sent) cannot be
    accepted, neither by editing the link nor with a link made before offers were
    signed in; such an older link still answers the offer that was sent."""
    async with worker():
        departure = await book(web, env, rid, days=1, marketing_consent=True)
        await offered(web, rid, "room_upgrade")
        sent = links.of(rid, departure, "room_upgrade")
        other = sent["offer_url"].replace("offers/room_upgrade", "offers/late_checkout")
        shown = await web.get(sent["offer_url"])
        edited = {"get": await web.get(other), "post": await post_form(web, other, shown, {"answer": "accept"})}
        old_token = links.token(rid, Purpose.offer, departure)  # no offer in it: a link sent before
        old_shown = await web.get(f"/guest/{old_token}/offers/room_upgrade")
        old_other = {"get": await web.get(f"/guest/{old_token}/offers/late_checkout"),
                     "post": await post_form(web, f"/guest/{old_token}/offers/late_checkout", old_shown,
                                             {"answer": "accept"})}
        old_sent = await post_form(web, f"/guest/{old_token}/offers/room_upgrade", old_shown, {"answer": "decline"})
        state = await journey(web, rid)
        await end(env, rid)
    for answer in (*edited.values(), *old_other.values()):
        assert answer.status_code == 404, answer.status_code
        assert "Esta oferta não está disponível" in answer.text and "não foi enviada a você" in answer.text
    assert old_sent.status_code == 303
    upsells = {item["offer"]: item["status"] for item in state["upsells"]}
    assert upsells == {"room_upgrade": "declined", "late_checkout": "planned"}


# -- feedback ------------------------------------------------------------------------


CLOSING_WAIT_SECONDS = 10.0


async def end_if_running(env: Any, rid: str) -> None:
    """A journey with its feedback in closes on its own; end it if it has not. A journey
    already closing refuses the cancel and is waited for: it may still be recording."""
    with contextlib.suppress(RPCError, WorkflowUpdateFailedError):
        await end(env, rid)
    handle = env.client.get_workflow_handle(workflow_id_for(rid))
    deadline = asyncio.get_running_loop().time() + CLOSING_WAIT_SECONDS  # real time: the clock is not skipped
    while (status := (await handle.describe()).status) is WorkflowExecutionStatus.RUNNING:
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert status is not WorkflowExecutionStatus.RUNNING


async def _after_stay(web: httpx.AsyncClient, rid: str) -> None:
    for event in ("checked_in", "checked_out"):
        answer = await web.post(f"/reservations/{rid}/events", json={"type": event})
        assert answer.status_code == 200, answer.text


async def test_feedback_opens_after_the_stay(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid, language="en")
        answer = await web.get(links.of(rid, departure)["feedback_url"])
        await end(env, rid)
    assert answer.status_code == 409
    assert "Tell us after your stay" in answer.text


async def test_a_detractor_opens_a_follow_up_and_still_sees_the_review_link(env, worker, app, web, links, rid):
    async with worker():
        departure = await book(web, env, rid)
        await _after_stay(web, rid)
        url = links.of(rid, departure)["feedback_url"]
        form = await web.get(url)
        invalid = await post_form(web, url, form, {"score": "11", "comment": "<i>hm</i>"})
        sent = await post_form(web, url, form, {"satisfaction": "2", "score": "3", "comment": "Quarto <b>sujo</b>",
                                                "request_id": request_id(form)})
        thanks = await web.get(sent.headers["location"])
        twice = await post_form(web, url, form, {"score": "10"})
        state = await journey(web, rid)
        chat = await web.get(links.of(rid, departure)["chat_url"])
        await end_if_running(env, rid)
    assert form.status_code == 200 and "Qual a probabilidade" in form.text
    assert "No geral, quão satisfeito você ficou" in form.text  # its own question, before the NPS one
    assert form.text.index('id="satisfaction"') < form.text.index('id="score"')
    assert invalid.status_code == 422 and "Escolha uma nota de 0 a 10." in invalid.text
    assert "Escolha de 0 a 10 quão satisfeito você ficou." in invalid.text
    assert "&lt;i&gt;hm&lt;/i&gt;" in invalid.text
    assert sent.status_code == 303
    assert "Sentimos muito" in thanks.text and "https://reviews.example/hotel-1" in thanks.text
    assert twice.status_code == 409 and "Já recebemos a sua avaliação" in twice.text
    assert state["feedback"]["status"] == "received" and state["feedback"]["score"] == 3
    assert state["feedback"]["satisfaction"] == 2
    [follow_up] = [m for m in state["messages"] if m["direction"] == "inbound"]
    assert follow_up["template"] == "feedback_follow_up" and follow_up["channel"] == "webchat"
    assert "Quarto &lt;b&gt;sujo&lt;/b&gt;" in chat.text


async def test_a_promoter_is_asked_for_a_public_review(env, worker, app, web, links, rid):
    async with worker():
        departure = await book(web, env, rid, language="es")
        await _after_stay(web, rid)
        url = links.of(rid, departure)["feedback_url"]
        form = await web.get(url)
        sent = await post_form(web, url, form, {"satisfaction": "9", "score": "10", "comment": ""})
        thanks = await web.get(sent.headers["location"])
        state = await journey(web, rid)
        await end_if_running(env, rid)
    assert "¿Compartiría su experiencia" in thanks.text
    assert 'href="https://reviews.example/hotel-1"' in thanks.text
    assert state["feedback"]["score"] == 10 and state["feedback"]["satisfaction"] == 9
    assert "En general, ¿qué tan satisfecho quedó" in form.text
    assert not [m for m in state["messages"] if m["direction"] == "inbound"]


# -- chat ----------------------------------------------------------------------------


async def test_chat_messages_go_both_ways(env, worker, email, web, links, rid):
    async with worker({Channel.email: email, Channel.webchat: WebchatSender()}):
        departure = await book(web, env, rid, language="en")
        url = links.of(rid, departure)["chat_url"]
        page = await web.get(url)
        sent = await post_form(web, url, page, {"body": "Can I bring <b>my dog</b>?"})
        by_script = await post_form(web, url, page, {"body": "Also a cot"}, accept="application/json")
        empty = await post_form(web, url, page, {"body": "   "}, accept="application/json")
        reply = await web.post("/communications/send", json={
            "reservation_id": rid, "template": "free_text", "channel": "webchat",
            "context": {"body": "Yes, <dogs> are welcome!"},
        })
        assert reply.status_code == 202, reply.text
        messages: list[dict[str, Any]] = []
        for _ in range(100):
            messages = (await web.get(url + "/messages")).json()["messages"]
            if len(messages) == 3:
                break
            await asyncio.sleep(0.1)
        shown = await web.get(url)
        state = await journey(web, rid)
        await end(env, rid)
    assert page.status_code == 200 and "No messages yet." in page.text
    assert sent.status_code == 303
    assert by_script.status_code == 201 and by_script.json()["message"]["text"] == "Also a cot"
    assert empty.status_code == 422 and empty.json()["error"] == "Please write a message."
    assert [m["direction"] for m in messages] == ["inbound", "inbound", "outbound"]
    assert "Yes, <dogs> are welcome!" in messages[2]["text"]
    assert "Can I bring &lt;b&gt;my dog&lt;/b&gt;?" in shown.text
    assert "Yes, &lt;dogs&gt; are welcome!" in shown.text
    inbound = [m for m in state["messages"] if m["direction"] == "inbound"]
    assert {m["channel"] for m in inbound} == {"webchat"} and len(inbound) == 2
    assert {m["status"] for m in inbound} == {"received"}


async def test_chat_page_renders_without_inline_script_and_with_its_poll_url(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid, language="en")
        url = links.of(rid, departure)["chat_url"]
        page = await web.get(url)
        script = await web.get(re.search(r'<script src="([^"]+)"', page.text).group(1))
        style = await web.get(re.search(r'<link rel="stylesheet" href="([^"]+)"', page.text).group(1))
        await end(env, rid)
    assert f'data-poll="{url}/messages?lang=en"' in page.text
    assert script.status_code == 200 and "fetch(" in script.text
    assert style.status_code == 200 and "--brand" in style.text


async def test_the_chat_closes_when_the_reservation_is_cancelled(env, worker, web, links, rid):
    """A cancelled reservation (and an erased guest's: erase cancels first) takes no more messages."""
    async with worker():
        departure = await book(web, env, rid, language="en")
        url = links.of(rid, departure)["chat_url"]
        page = await web.get(url)
        await web.delete(f"/reservations/{rid}")
        for _ in range(100):
            if (await journey(web, rid))["stage"] == "cancelled":
                break
            await asyncio.sleep(0.1)
        refused = await post_form(web, url, page, {"body": "Hello?"})
        by_script = await post_form(web, url, page, {"body": "Hello?"}, accept="application/json")
        shown = await web.get(url)
        state = await journey(web, rid)
    assert refused.status_code == 409 and "This conversation is closed" in refused.text
    assert by_script.status_code == 409
    assert shown.status_code == 200 and "This conversation is closed" in shown.text
    assert 'id="composer" class="card composer"' not in shown.text
    assert not [m for m in state["messages"] if m["direction"] == "inbound"]


def test_every_language_has_every_key():
    from api.i18n import CATALOGUES

    keys = {language: set(messages) for language, messages in CATALOGUES.items()}
    assert keys["pt-BR"] == keys["en"] == keys["es"]
