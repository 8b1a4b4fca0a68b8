"""The staff pages through HTTP: signing in (cookie or bearer key), the
operations panel with a real journey and its actions, the needs-attention
list, and the dashboard's card "Jornada digital" over known data."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from api.app import create_app
from api.staff import attention, svg_charts
from api.staff.attention import AttentionKind
from api.staff.session import SESSION_COOKIE, make_session_cookie, read_session_cookie
from communications.message_store import MessageRecord
from guest_journey.database import SessionFactory, create_engine, session_factory
from guest_journey.journeys import (
    Checkin,
    CheckinStatus,
    Feedback,
    FeedbackStatus,
    JourneyView,
    Stage,
    Step,
    StepKind,
    StepStatus,
    Upsell,
    UpsellStatus,
    workflow_id_for,
)
from guest_journey.policy import JourneyPolicy, load_policy
from guest_journey.read_model import save_journey
from guest_journey.reservations import Guest
from guest_journey.schema import upgrade_database
from guest_journey.settings import Settings
from services import dashboard
from services.kpi_alerts import list_alerts
from services.kpi_tables import KpiSnapshot
from services.kpi_windows import measure_kpi_windows
from tests.api.test_reservations import reservation_body
from tests.communications.staff_replies import add_in_order
from tests.workflows.journeys import end, now

KEYS = "ops-key-0123456789:ops,res-key-0123456789:reservations,admin-key-0123456789:admin"
OPS, RES = "ops-key-0123456789", "res-key-0123456789"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
HTML = {"accept": "text/html"}


def staff_app(settings: Settings) -> FastAPI:
    """The app, staff pages included."""
    return create_app(settings)


async def client_for(
    settings: Settings, address: str = "127.0.0.1", base_url: str = "http://guest-journey.test"
) -> AsyncIterator[httpx.AsyncClient]:
    app = staff_app(settings)
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield client


@pytest.fixture
def staff_settings(api_settings: Settings) -> Settings:
    return api_settings.model_copy(update={"api_keys": KEYS})


@pytest.fixture
async def web(staff_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(staff_settings, "203.0.113.7"):
        yield client


@pytest.fixture
async def app_sessions(staff_settings: Settings) -> AsyncIterator[SessionFactory]:
    """The app's own database (the settings' data dir), for seeding and reading back."""
    engine = create_engine(staff_settings.resolved_database_url)
    await upgrade_database(engine)
    yield session_factory(engine)
    await engine.dispose()


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(web: httpx.AsyncClient, key: str = OPS, next: str = "/guest-experience") -> httpx.Response:
    form = await web.get("/login", headers=HTML)
    return await web.post("/login", data={"api_key": key, "next": next, "csrf_token": csrf(form)})


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


# -- signing in -----------------------------------------------------------------------


async def test_a_browser_signs_in_and_keeps_a_signed_session_cookie(web):
    away = await web.get("/guest-experience?reservation_id=R-1", headers=HTML)
    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=%2Fguest-experience%3Freservation_id%3DR-1"

    form = await web.get("/login", headers=HTML)
    assert form.status_code == 200
    assert 'name="api_key" type="password"' in form.text
    assert "gj_staff_csrf=" in form.headers["set-cookie"]

    wrong = await web.post("/login", data={"api_key": "nope", "next": "/analytics", "csrf_token": csrf(form)})
    assert wrong.status_code == 401 and "Chave de API inválida" in wrong.text
    other_role = await web.post("/login", data={"api_key": RES, "next": "/analytics", "csrf_token": csrf(form)})
    assert other_role.status_code == 403 and "papel reservations" in other_role.text

    signed = await web.post("/login", data={"api_key": OPS, "next": "/analytics", "csrf_token": csrf(form)})
    assert signed.status_code == 303 and signed.headers["location"] == "/analytics"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # the public base URL is http
    assert OPS not in cookie  # the key itself is never in the cookie

    dashboard = await web.get("/analytics", headers=HTML)
    assert dashboard.status_code == 200 and "Jornada digital" in dashboard.text
    assert ">Sair</button>" in dashboard.text and '<span class="role" title="Papel da chave de API">ops</span>' in dashboard.text
    panel = await web.get("/guest-experience", headers=HTML)
    assert panel.status_code == 200
    assert '<label for="reservation_id">Reserva</label>' in panel.text
    assert '<button class="button" type="submit">Carregar</button>' in panel.text
    assert panel.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in panel.headers["content-security-policy"]
    assert "<script>" not in panel.text and "style=" not in panel.text

    out = await web.post("/logout", data={"csrf_token": csrf(panel)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert (await web.get("/guest-experience", headers=HTML)).status_code == 303


async def test_the_session_is_signed_and_follows_the_key(staff_settings, web):
    secret = staff_settings.resolved_secret_key()
    good = make_session_cookie(secret, "ops", OPS)
    assert read_session_cookie(secret, good) is not None
    assert read_session_cookie(secret, good, now=datetime.now(UTC) + timedelta(hours=13)) is None
    payload, _, signature = good.partition(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    for value in (forged, make_session_cookie("another-secret", "ops", OPS), make_session_cookie(secret, "ops", "x")):
        web.cookies.set(SESSION_COOKIE, value)
        assert (await web.get("/guest-experience", headers=HTML)).status_code == 303

    web.cookies.set(SESSION_COOKIE, good)
    assert (await web.get("/guest-experience", headers=HTML)).status_code == 200
    # The key's role is read on every request: a key demoted to `reservations` loses the pages.
    demoted = staff_settings.model_copy(update={"api_keys": f"{OPS}:reservations"})
    async for other in client_for(demoted, "203.0.113.7"):
        other.cookies.set(SESSION_COOKIE, good)
        page = await other.get("/guest-experience", headers=HTML)
        assert page.status_code == 403 and "Acesso negado" in page.text
    # A key taken out of the configuration signs its browsers out.
    revoked = staff_settings.model_copy(update={"api_keys": "other-key-0123:ops"})
    async for other in client_for(revoked, "203.0.113.7"):
        other.cookies.set(SESSION_COOKIE, good)
        assert (await other.get("/guest-experience", headers=HTML)).status_code == 303


async def test_the_cookie_is_secure_behind_https(staff_settings):
    https = staff_settings.model_copy(update={"public_base_url": "https://hotel.example"})
    async for web in client_for(https, "203.0.113.7", "https://hotel.example"):
        signed = await sign_in(web)
    assert signed.status_code == 303
    assert "Secure" in signed.headers["set-cookie"]


async def test_scripts_send_the_same_key_as_bearer(web):
    page = await web.get("/analytics", headers=bearer(OPS))
    assert page.status_code == 200 and "Jornada digital" in page.text
    admin = await web.get("/guest-experience", headers=bearer("admin-key-0123456789"))
    assert admin.status_code == 200
    refused = await web.get("/analytics", headers=bearer(RES))
    assert refused.status_code == 403 and "Acesso negado" in refused.text
    unknown = await web.get("/analytics", headers=bearer("nope"))
    assert unknown.status_code == 401 and unknown.headers["www-authenticate"] == "Bearer"
    json_client = await web.get("/analytics", headers={"accept": "application/json"})
    assert json_client.status_code == 401


async def test_sign_in_goes_back_only_to_a_page_of_this_site(web):
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        signed = await sign_in(web, next=target)
        assert signed.headers["location"] == "/guest-experience"


async def test_forms_need_the_pages_csrf_token(web):
    await sign_in(web)
    for fields in ({}, {"csrf_token": "forged"}):
        answer = await web.post("/guest-experience", data={"action": "send", "reservation_id": "R-1", **fields})
        assert answer.status_code == 403, answer.text
    login = await web.post("/login", data={"api_key": OPS, "next": "/"})
    assert login.status_code == 403


async def test_without_keys_loopback_callers_are_let_in(api_settings):
    async for web in client_for(api_settings):
        assert (await web.get("/guest-experience", headers=HTML)).status_code == 200
        login = await web.get("/login", headers=HTML)
        assert "Nenhuma chave de API está configurada" in login.text
    async for web in client_for(api_settings, "203.0.113.7"):
        assert (await web.get("/guest-experience", headers=HTML)).status_code == 303


# -- the operations panel ------------------------------------------------------------


def message_ids(page: httpx.Response) -> list[str]:
    return re.findall(r'<li class="message [^"]*" id="msg-([^"]+)"', page.text)


async def test_the_panel_loads_a_journey_and_acts_on_it(env, worker, email, web, staff_settings):
    rid = f"R-OPS-{uuid.uuid4().hex[:8]}"
    await sign_in(web)
    async with worker():
        arrival = await now(env) + timedelta(days=2)
        put = await web.put(f"/reservations/{rid}", json=reservation_body(arrival, marketing_consent=True),
                            headers=bearer(RES))
        assert put.status_code == 201, put.text
        await email.wait_for(2)

        page = await web.get(f"/guest-experience?reservation_id={rid}", headers=HTML)
        assert page.status_code == 200, page.text
        assert f"Reserva {rid}" in page.text and "Pré-chegada" in page.text and "Ana Souza" in page.text
        assert 'data-key="checkin_invitation"' in page.text and 'data-key="checkin_reminder:PT24H"' in page.text
        assert "Convite de check-in" in page.text and "Oferta: Upgrade de quarto" in page.text
        assert (f'href="http://{staff_settings.api_host}:{staff_settings.temporal_ui_port}'
                f'/namespaces/default/workflows/journey-{rid}"') in page.text
        before = message_ids(page)
        assert len(before) == 2
        invitation = re.search(r'id="msg-([^"]+)"\s+data-template="checkin_invitation"', page.text).group(1)

        # Resend the invitation (twice with the same form: sent once).
        resend = {"csrf_token": csrf(page), "action": "send", "reservation_id": rid, "template": "checkin_invitation",
                  "channel": "email", "request_id": uuid.uuid4().hex}
        sent = await web.post("/guest-experience", data=resend)
        assert sent.status_code == 303, sent.text
        assert sent.headers["location"] == f"/guest-experience?reservation_id={rid}&done=sent#timeline"
        again = await web.post("/guest-experience", data=resend)
        assert again.status_code == 303
        await email.wait_for(3)
        page = await web.get(sent.headers["location"], headers=HTML)
        assert "Mensagem enviada pela jornada" in page.text
        after = message_ids(page)
        assert len(after) == 3 and after[:2] == before
        assert page.text.count('data-template="checkin_invitation"') == 2

        # Record the guest's answer to the invitation, then answer it in the web chat.
        reply = await web.post("/guest-experience", data={
            "csrf_token": csrf(page), "action": "reply", "reservation_id": rid, "reply_channel": "email",
            "sender": "ana@example.com", "reply_body": "Posso chegar às 11h?", "reply_in_reply_to": invitation,
            "request_id": uuid.uuid4().hex,
        })
        assert reply.status_code == 303, reply.text
        page = await web.get(reply.headers["location"], headers=HTML)
        assert "Resposta do hóspede registrada" in page.text
        assert "Hóspede → hotel" in page.text and "Posso chegar às 11h?" in page.text
        assert f'Em resposta a <a href="#msg-{invitation}">Convite de check-in' in page.text
        guest_message = message_ids(page)[-1]

        chat = await web.post("/guest-experience", data={
            "csrf_token": csrf(page), "action": "chat", "reservation_id": rid,
            "chat_body": "Claro! <b>Até logo</b>", "chat_in_reply_to": guest_message, "request_id": uuid.uuid4().hex,
        })
        assert chat.status_code == 303, chat.text
        page = await web.get(chat.headers["location"], headers=HTML)
        assert "Claro! &lt;b&gt;Até logo&lt;/b&gt;" in page.text
        assert 'data-template="free_text" data-channel="webchat"' in page.text
        fragment = await web.get(f"/guest-experience?reservation_id={rid}&fragment=timeline", headers=HTML)
        assert fragment.text.startswith('<div id="timeline-body"') and "<html" not in fragment.text
        assert message_ids(fragment) == message_ids(page)
        assert "Mensagem da equipe: Convite de check-in" in page.text

        # Bad forms are answered on the page, naming the field.
        empty = await web.post("/guest-experience", data={
            "csrf_token": csrf(page), "action": "send", "reservation_id": rid, "template": "free_text"})
        assert empty.status_code == 422 and 'id="send-body-error"' in empty.text and "escreva a mensagem" in empty.text
        no_offer = await web.post("/guest-experience", data={
            "csrf_token": csrf(page), "action": "send", "reservation_id": rid, "template": "upsell_offer"})
        assert no_offer.status_code == 422 and "escolha a oferta" in no_offer.text

        # A script may act with its key and no form token.
        scripted = await web.post("/guest-experience", headers=bearer(OPS), data={
            "action": "send", "reservation_id": rid, "template": "upsell_offer", "upsell_offer": "room_upgrade"})
        assert scripted.status_code == 303, scripted.text

        journey = (await web.get(f"/guest-experience/{rid}", headers=bearer(OPS))).json()
        summary = (await web.get("/communications/delivery/summary", headers=bearer(OPS),
                                 params={"hotel_id": "hotel-1", "since": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()})).json()
        await end(env, rid)

    inbound = [m for m in journey["messages"] if m["direction"] == "inbound"]
    assert [m["in_reply_to"] for m in inbound] == [invitation]
    chat_reply = [m for m in journey["messages"] if m["channel"] == "webchat"]
    assert chat_reply and chat_reply[0]["in_reply_to"] == guest_message
    manual = [step for step in journey["steps"] if step["kind"] == "manual"]
    assert len(manual) == 3  # the resend (once), the chat answer, the scripted offer
    assert summary["response_time_minutes"]["hotel_replies"] is not None


async def test_an_unknown_reservation_is_said_on_the_page(web):
    await sign_in(web)
    missing = await web.get("/guest-experience?reservation_id=R-NOBODY-HERE", headers=HTML)
    assert missing.status_code == 404
    assert "Nenhuma jornada encontrada para a reserva “R-NOBODY-HERE”" in missing.text
    assert 'value="R-NOBODY-HERE"' in missing.text and 'aria-invalid="true"' in missing.text
    bad = await web.get("/guest-experience?reservation_id=../etc", headers=HTML)
    assert bad.status_code == 422 and "não é um código de reserva válido" in bad.text
    page = await web.get("/guest-experience", headers=HTML)
    acting = await web.post("/guest-experience", data={
        "csrf_token": csrf(page), "action": "send", "reservation_id": "R-NOBODY-HERE", "template": "checkin_invitation"})
    assert acting.status_code == 404 and "no journey for reservation" in acting.text


async def test_the_panel_never_shadows_the_json_routes(web):
    answer = await web.get("/guest-experience/R-NOBODY-HERE", headers=bearer(OPS))
    assert answer.status_code == 404
    assert answer.json() == {"detail": "no journey for reservation 'R-NOBODY-HERE'"}


# -- needs attention -----------------------------------------------------------------


def view(reservation_id: str, *, arrival: datetime, stage: Stage = Stage.pre_arrival, hotel_id: str = "hotel-1",
         checkin: bool = False, score: int | None = None, scored_at: datetime | None = None,
         satisfaction: int | None = None,
         steps: list[Step] | None = None, upsells: list[Upsell] | None = None, nights: int = 2) -> JourneyView:
    feedback = Feedback()
    if score is not None:
        feedback = Feedback(status=FeedbackStatus.received, score=score, satisfaction=satisfaction,
                            received_at=scored_at)
    return JourneyView(
        reservation_id=reservation_id, workflow_id=workflow_id_for(reservation_id), hotel_id=hotel_id, stage=stage,
        guest=Guest(name="Ana Souza", email="ana@example.com"), arrival=arrival,
        departure=arrival + timedelta(days=nights), steps=steps or [], upsells=upsells or [],
        checkin=Checkin(status=CheckinStatus.completed if checkin else CheckinStatus.pending,
                        completed_at=arrival - timedelta(days=1) if checkin else None),
        feedback=feedback, revision=1,
    )


def message(mid: str, reservation_id: str | None, direction: str, status: str, created_at: datetime, *,
            hotel_id: str = "hotel-1", channel: str = "email", template: str | None = None,
            in_reply_to: str | None = None, step_key: str | None = None, reason: str | None = None,
            body: str | None = None) -> MessageRecord:
    return MessageRecord(
        id=mid, reservation_id=reservation_id, hotel_id=hotel_id, direction=direction, channel=channel,
        template=template, status=status, created_at=created_at, updated_at=created_at, in_reply_to=in_reply_to,
        step_key=step_key, reason=reason, body_text=body, sender="ana@example.com" if reservation_id is None else None,
    )


async def seed(sessions: SessionFactory, views: list[JourneyView], messages: list[MessageRecord]) -> None:
    async with sessions() as session:
        for item in views:
            await save_journey(session=session, view=item)
        await add_in_order(session, messages)


async def test_needs_attention_lists_each_kind_and_leaves_out_what_is_handled(app_sessions, staff_settings, web):
    t = datetime.now(UTC)
    p = f"A{uuid.uuid4().hex[:6]}-"
    minutes = lambda n: timedelta(minutes=n)  # noqa: E731
    late_step = Step(key="checkin_invitation", kind=StepKind.checkin_invitation, status=StepStatus.planned,
                     scheduled_for=t - minutes(40))
    fresh_step = Step(key="checkin_invitation", kind=StepKind.checkin_invitation, status=StepStatus.planned,
                      scheduled_for=t - minutes(2))
    await seed(app_sessions, [
        view(p + "STUCK-STEP", arrival=t + timedelta(days=3), steps=[late_step]),
        view(p + "STUCK-STAGE", arrival=t - timedelta(hours=2)),
        view(p + "MOVING", arrival=t + timedelta(days=3), steps=[fresh_step]),
        view(p + "CHECKIN", arrival=t + timedelta(hours=10)),
        view(p + "CHECKED-IN", arrival=t + timedelta(hours=10), checkin=True),
        view(p + "LATER", arrival=t + timedelta(hours=30)),
        view(p + "DETRACTOR", arrival=t - timedelta(days=4), stage=Stage.post_stay, score=4, scored_at=t - timedelta(hours=2)),
        view(p + "FOLLOWED", arrival=t - timedelta(days=4), stage=Stage.post_stay, score=5, scored_at=t - timedelta(hours=3)),
        view(p + "PROMOTER", arrival=t - timedelta(days=4), stage=Stage.post_stay, score=9, scored_at=t - timedelta(hours=3)),
        view(p + "SLOW", arrival=t + timedelta(days=5), hotel_id="hotel-slow"),
    ], [
        message(p + "f1", p + "FAILED", "outbound", "failed", t - minutes(60), template="checkin_invitation",
                reason="mailbox unavailable"),
        message(p + "f2", p + "FALLBACK", "outbound", "failed", t - minutes(60), template="upsell_offer"),
        message(p + "f3", p + "FALLBACK", "outbound", "sent", t - minutes(59), template="upsell_offer", channel="whatsapp"),
        message(p + "i1", p + "UNANSWERED", "inbound", "received", t - minutes(30), body="Tem estacionamento?"),
        message(p + "i2", p + "RECENT", "inbound", "received", t - minutes(5), body="Oi"),
        message(p + "i3", p + "REPLIED", "inbound", "received", t - minutes(30), body="Oi"),
        message(p + "o3", p + "REPLIED", "outbound", "sent", t - minutes(20), in_reply_to=p + "i3", step_key="manual:a"),
        message(p + "i4", p + "WRITTEN", "inbound", "received", t - minutes(30), body="Oi"),
        message(p + "o4", p + "WRITTEN", "outbound", "sent", t - minutes(25), step_key="manual:b"),
        message(p + "i5", p + "SLOW", "inbound", "received", t - minutes(30), hotel_id="hotel-slow", body="Oi"),
        message(p + "o5", p + "FOLLOWED", "outbound", "sent", t - minutes(60), step_key="manual:c"),
        message(p + "u1", None, "inbound", "received", t - minutes(15), hotel_id=None, body="Quem é?"),
    ])
    policy = JourneyPolicy(hotels={"hotel-slow": {"kpi_targets": {"response_time_max_minutes": 60}}})
    async with app_sessions() as session:
        groups = await attention.needs_attention(
            session=session, now=t,
            sla_of=lambda hotel: (policy.for_hotel(hotel) if hotel else policy).kpi_targets.response_time_max)
    found = {group.kind: {item.reservation_id for item in group.items
                          if item.reservation_id is None or item.reservation_id.startswith(p)}
             for group in groups}
    assert found[AttentionKind.stuck] == {p + "STUCK-STEP", p + "STUCK-STAGE"}
    assert found[AttentionKind.checkin_pending] == {p + "CHECKIN"}
    assert found[AttentionKind.failed_message] == {p + "FAILED"}
    assert found[AttentionKind.unanswered] == {p + "UNANSWERED"}
    assert found[AttentionKind.detractor] == {p + "DETRACTOR"}
    assert None in found[AttentionKind.unmatched]

    await sign_in(web)
    page = await web.get("/guest-experience", headers=HTML)
    section = page.text[page.text.index('id="attention"'):]
    assert f"{p}STUCK-STEP" in section and "mailbox unavailable" in section and "nota 4" in section
    assert "“Tem estacionamento?” — aguardando há 30 min" in section
    loaded = await web.get(f"/guest-experience?reservation_id={p}DETRACTOR", headers=HTML)
    assert loaded.status_code == 200 and "detrator" in loaded.text  # finished journeys come from the read model


async def test_messages_in_doubt_are_listed_with_a_button_to_send_them_again(app_sessions, web):
    t = datetime.now(UTC)
    p = f"D{uuid.uuid4().hex[:6]}-"
    hotel = f"hotel-{p}"
    minutes = lambda n: timedelta(minutes=n)  # noqa: E731
    step = Step(key="checkin_invitation", kind=StepKind.checkin_invitation, status=StepStatus.in_doubt,
                scheduled_for=t - minutes(30), channel="email", template="checkin_invitation",
                message_id=p + "d1", reason="email: SMTP timeout after DATA; the guest may not have it")
    sending = Step(key="checkin_reminder:PT24H", kind=StepKind.checkin_reminder, status=StepStatus.due,
                   scheduled_for=t - minutes(1), channel="email", template="checkin_reminder")
    await seed(app_sessions, [
        view(p + "DOUBT", arrival=t + timedelta(days=3), steps=[step, sending]),
        view(p + "WA", arrival=t + timedelta(days=3), hotel_id=hotel),
        view(p + "ENDED", arrival=t - timedelta(days=3), stage=Stage.cancelled),
        view(p + "RESENT", arrival=t + timedelta(days=3)),
    ], [
        message(p + "d1", p + "DOUBT", "outbound", "in_doubt", t - minutes(30), template="checkin_invitation",
                step_key="checkin_invitation", reason="SMTP timeout after DATA"),
        message(p + "s1", p + "DOUBT", "outbound", "sending", t - minutes(1), template="checkin_reminder",
                step_key="checkin_reminder:PT24H"),
        message(p + "d2", p + "WA", "outbound", "in_doubt", t - minutes(20), hotel_id=hotel, channel="whatsapp",
                template="upsell_offer", step_key="upsell:room_upgrade"),
        message(p + "d3", p + "ENDED", "outbound", "in_doubt", t - minutes(40), template="checkin_invitation",
                step_key="checkin_invitation"),
        message(p + "d4", p + "RESENT", "outbound", "in_doubt", t - minutes(50), template="checkin_invitation",
                step_key="checkin_invitation"),
        message(p + "o4", p + "RESENT", "outbound", "sent", t - minutes(45), template="checkin_invitation",
                step_key="manual:r"),
    ])
    async with app_sessions() as session:
        everywhere = await attention.messages_in_doubt(session=session, now=t)
        one_hotel = await attention.needs_attention(session=session, now=t, hotel_id=hotel)
    mine = [item for item in everywhere if (item.reservation_id or "").startswith(p)]
    assert [item.message_id for item in mine] == [p + "d2", p + "d1", p + "d3"]  # newest first; o4 took care of d4
    assert [item.can_send_again for item in mine] == [True, True, False]  # the cancelled journey sends no more
    assert mine[1].detail == "Convite de check-in por E-mail: SMTP timeout after DATA"
    assert "jornada encerrada" in mine[2].detail
    [doubtful] = [group for group in one_hotel if group.kind is AttentionKind.in_doubt]
    assert [item.message_id for item in doubtful.items] == [p + "d2"]

    await sign_in(web)
    page = await web.get("/guest-experience", headers=HTML)
    section = page.text[page.text.index('id="attention-in_doubt"'):]
    section = section[:section.index("</details>")]
    assert "Mensagens em dúvida" in section and "Oferta por WhatsApp" in section
    forms = re.findall(r'<form method="post" action="/guest-experience".*?</form>', section, re.S)
    assert [re.search(r'name="message_id" value="([^"]+)"', form).group(1) for form in forms] == [p + "d2", p + "d1"]
    assert all('name="action" value="send_again"' in form and 'name="csrf_token"' in form
               and ">Enviar novamente</button>" in form for form in forms)
    assert f'name="reservation_id" value="{p}DOUBT"' in forms[1]

    # The journey's own page says the same, in its timeline and its plan.
    loaded = await web.get(f"/guest-experience?reservation_id={p}DOUBT", headers=HTML)
    assert loaded.status_code == 200, loaded.text
    entry = loaded.text[loaded.text.index(f'id="msg-{p}d1"'):]
    entry = entry[:entry.index("</li>")]
    assert 'data-status="in_doubt"' in entry and ">Em dúvida</span>" in entry
    assert ">Enviar novamente</button>" in entry and "Reenviar" not in entry  # never a second message
    reminder = loaded.text[loaded.text.index(f'id="msg-{p}s1"'):]
    assert ">Enviando</span>" in reminder[:reminder.index("</li>")]
    plan = loaded.text[loaded.text.index('data-key="checkin_invitation"'):]
    assert ">Em dúvida</span>" in plan[:plan.index("</tr>")] and "SMTP timeout after DATA" in plan[:plan.index("</tr>")]
    assert 'data-pending="true"' in loaded.text  # a message being sent: the timeline refreshes itself

    # A message that is not in doubt (any more) is not sent again; the form needs its token.
    sent = await web.post("/guest-experience", data={
        "csrf_token": csrf(page), "action": "send_again", "reservation_id": p + "RESENT", "message_id": p + "o4",
        "request_id": uuid.uuid4().hex})
    assert sent.status_code == 409
    assert "a mensagem não está em dúvida (está enviada): não há o que enviar novamente" in sent.text
    other = await web.post("/guest-experience", data={
        "csrf_token": csrf(page), "action": "send_again", "reservation_id": p + "RESENT", "message_id": p + "d1"})
    assert other.status_code == 404  # a message of another reservation
    forged = await web.post("/guest-experience", data={
        "action": "send_again", "reservation_id": p + "DOUBT", "message_id": p + "d1"})
    assert forged.status_code == 403

    # The dashboard counts it apart: neither sent nor failed.
    await measure(app_sessions)
    board = await web.get(f"/analytics?hotel_id={hotel}", headers=HTML)
    assert "1 mensagem em dúvida" in board.text
    channels = board.text[board.text.index('id="channels-table"'):]
    assert re.search(r"WhatsApp</th><td>1</td><td>0</td><td>1</td><td>0,0\s%", channels)


# -- the Temporal Web UI link ---------------------------------------------------------


async def test_the_journey_links_to_the_configured_temporal_ui(app_sessions, staff_settings):
    rid = f"R-UI-{uuid.uuid4().hex[:8]}"
    await seed(app_sessions, [view(rid, arrival=datetime.now(UTC) - timedelta(days=9), stage=Stage.completed)], [])
    production = staff_settings.model_copy(
        update={"temporal_ui_url": "https://ops.hotel.example/temporal", "temporal_namespace": "hotel-prod"}
    )

    async for web in client_for(production, "203.0.113.7"):
        await sign_in(web)
        page = await web.get(f"/guest-experience?reservation_id={rid}", headers=HTML)

    assert page.status_code == 200, page.text
    link = re.search(r'<a href="([^"]+)"[^>]*id="temporal-link"', page.text)
    assert link is not None, page.text
    assert link.group(1) == f"https://ops.hotel.example/temporal/namespaces/hotel-prod/workflows/journey-{rid}"


# -- the dashboard -------------------------------------------------------------------


def day_start(days_ago: int) -> datetime:
    today = datetime.now(UTC).astimezone(SAO_PAULO).date()
    return datetime.combine(today - timedelta(days=days_ago), time(0), tzinfo=SAO_PAULO)


async def seed_dashboard(sessions: SessionFactory, hotel: str) -> None:
    t = datetime.now(UTC)
    hours = lambda n: timedelta(hours=n)  # noqa: E731
    offer = lambda name, status, at: Upsell(offer=name, status=status, offered_at=at)  # noqa: E731
    await seed(sessions, [
        view(f"{hotel}-J1", hotel_id=hotel, arrival=t - timedelta(days=3), stage=Stage.post_stay, checkin=True,
             score=9, satisfaction=8, scored_at=t - hours(2), upsells=[offer("room_upgrade", UpsellStatus.accepted, t - hours(3))]),
        view(f"{hotel}-J2", hotel_id=hotel, arrival=t - timedelta(days=3), stage=Stage.post_stay, score=10, satisfaction=9,
             scored_at=t - hours(1.5), upsells=[offer("room_upgrade", UpsellStatus.declined, t - hours(3)),
                                                offer("late_checkout", UpsellStatus.offered, t - hours(3))]),
        view(f"{hotel}-J3", hotel_id=hotel, arrival=t - timedelta(days=2), stage=Stage.in_stay, checkin=True,
             score=4, satisfaction=5, scored_at=t - hours(1), upsells=[offer("room_upgrade", UpsellStatus.offered, t - hours(2)),
                                                       offer("late_checkout", UpsellStatus.offered, t - hours(2)),
                                                       offer("spa", UpsellStatus.planned, None)]),
        view(f"{hotel}-J4", hotel_id=hotel, arrival=t + timedelta(days=5)),
    ], [
        message(f"{hotel}-o1", f"{hotel}-J1", "outbound", "delivered", t - hours(3), hotel_id=hotel),
        message(f"{hotel}-g1", f"{hotel}-J1", "inbound", "received", t - hours(3) + timedelta(minutes=30),
                hotel_id=hotel, in_reply_to=f"{hotel}-o1"),
        message(f"{hotel}-i1", f"{hotel}-J2", "inbound", "received", t - hours(2), hotel_id=hotel),
        message(f"{hotel}-r1", f"{hotel}-J2", "outbound", "sent", t - hours(2) + timedelta(minutes=6),
                hotel_id=hotel, in_reply_to=f"{hotel}-i1", step_key="manual:r1"),
        message(f"{hotel}-i2", f"{hotel}-J3", "inbound", "received", t - hours(1), hotel_id=hotel),
        message(f"{hotel}-r2", f"{hotel}-J3", "outbound", "sent", t - hours(1) + timedelta(minutes=12),
                hotel_id=hotel, in_reply_to=f"{hotel}-i2", step_key="manual:r2"),
        message(f"{hotel}-f1", f"{hotel}-J3", "outbound", "failed", t - hours(1), hotel_id=hotel),
        message(f"{hotel}-w1", f"{hotel}-J3", "outbound", "delivered", t - hours(1), hotel_id=hotel,
                channel="whatsapp"),
    ])


async def measure(sessions: SessionFactory, policy: JourneyPolicy | None = None) -> int:
    """What the KPI schedule does every hour (the dashboard only reads what it stores)."""
    async with sessions() as session:
        return await measure_kpi_windows(session=session, policy=policy or JourneyPolicy(), at=datetime.now(UTC))


async def stored_snapshots(sessions: SessionFactory, hotel: str) -> int:
    async with sessions() as session:
        return len((await session.exec(select(KpiSnapshot).where(KpiSnapshot.hotel_id == hotel))).all())


def kpi(page: httpx.Response, key: str) -> str:
    start = page.text.index(f'id="kpi-{key}"')
    return page.text[start:page.text.index("</article>", start)]


def number(block: str) -> str:
    return re.search(r'<span class="number">([^<]*)</span>', block).group(1).replace("\xa0", " ")


async def test_the_card_jornada_digital_shows_what_the_data_says(app_sessions, staff_settings, web):
    hotel = f"hotel-{uuid.uuid4().hex[:6]}"
    await seed_dashboard(app_sessions, hotel)
    await sign_in(web)
    unmeasured = await web.get(f"/analytics?hotel_id={hotel}", headers=HTML)
    assert "Ainda não medido" in unmeasured.text and number(kpi(unmeasured, "satisfaction")) == "—"
    assert await stored_snapshots(app_sessions, hotel) == 0  # the dashboard only reads
    await measure(app_sessions)
    measured = await stored_snapshots(app_sessions, hotel)
    page = await web.get(f"/analytics?hotel_id={hotel}", headers=HTML)
    assert page.status_code == 200, page.text
    assert '<h2 id="jd-title">Jornada digital</h2>' in page.text
    satisfaction, upsell, response = kpi(page, "satisfaction"), kpi(page, "upsell"), kpi(page, "response")
    assert number(satisfaction) == "7,33"  # (8 + 9 + 5) / 3: the satisfaction answers, not the NPS ones
    assert "3 respostas a “quão satisfeito você ficou?”" in satisfaction
    assert "Meta ≥ 4,5 · <strong class=\"verdict\">Meta atingida" in satisfaction
    nps = kpi(page, "nps")  # beside it: 2 promoters (9, 10), 1 detractor (4)
    assert number(nps) == "+33" and "3 respostas a “recomendaria?”" in nps and "Sem meta" in nps
    assert number(upsell) == "20,0 %"  # 1 accepted of 5 sent (the planned one was not sent)
    assert "1 aceitas de 5 ofertadas" in upsell and "Meta atingida" in upsell
    assert number(response) == "9,0"  # staff replied in 6 and 12 minutes; the guest's own reply does not count
    assert "Meta ≤ 10 min" in response and "Meta atingida" in response
    adoption = page.text[page.text.index('id="checkin-adoption"'):]
    assert number(adoption) == "66,7 %" and "2 de 3 chegadas" in adoption
    channels = page.text[page.text.index('id="channels-table"'):]
    assert re.search(r"E-mail</th><td>4</td><td>1</td><td>0</td><td>25,0\s%", channels)
    assert re.search(r"WhatsApp</th><td>1</td><td>0</td><td>0</td><td>0,0\s%", channels)
    assert 'id="delivery-in-doubt"' not in page.text
    assert page.text.count('<svg class="chart"') == 6 and 'role="img"' in page.text
    assert "<script>" not in page.text

    assert "Medido às" in page.text and 'action="/analytics/measure"' in page.text
    assert measured == 15 + 9  # the open day and week, and the caught-up ones before them
    assert await stored_snapshots(app_sessions, hotel) == measured  # viewing wrote nothing

    # Per-hotel targets from the policy (kpi_targets, overridden per hotel).
    policy_file = staff_settings.data_dir / "kpi-policy.yaml"
    policy_file.write_text("quiet_hours: null\nkpi_targets: {response_time_max_minutes: 5}\n"
                           f"hotels:\n  {hotel}: {{kpi_targets: {{satisfaction_min: 8, upsell_conversion_min: 0.25}}}}\n")
    async for strict in client_for(staff_settings.model_copy(update={"policy_file": policy_file}), "203.0.113.7"):
        await sign_in(strict)
        page = await strict.get(f"/analytics?hotel_id={hotel}", headers=HTML)
    assert "Meta ≥ 8,0" in kpi(page, "satisfaction") and "Fora da meta" in kpi(page, "satisfaction")
    assert "Meta ≥ 25 %" in kpi(page, "upsell").replace("\xa0", " ") and "Fora da meta" in kpi(page, "upsell")
    assert "Meta ≤ 5 min" in kpi(page, "response") and "Fora da meta" in kpi(page, "response")
    async with app_sessions() as session:  # the schedule's alerts hold the hotel to the same targets
        await measure_kpi_windows(session=session, policy=load_policy(policy_file), at=datetime.now(UTC))
        alerts = await list_alerts(session=session, hotel_id=hotel)
    assert {(alert.kpi.value, alert.target) for alert in alerts if alert.kind.value == "threshold"} >= {
        ("satisfaction_avg", 8.0), ("upsell_conversion", 0.25)}

    weekly = await web.get(f"/analytics?hotel_id={hotel}&window=week", headers=HTML)
    assert weekly.status_code == 200 and "janelas de uma semana" in weekly.text
    assert number(kpi(weekly, "satisfaction")) == "7,33"


async def test_the_trend_shows_three_falling_windows(app_sessions, web):
    hotel = f"hotel-{uuid.uuid4().hex[:6]}"
    views = [
        view(f"{hotel}-T{days}", hotel_id=hotel, arrival=day_start(days) - timedelta(days=3), stage=Stage.post_stay,
             score=score, satisfaction=score, scored_at=day_start(days) + timedelta(minutes=1))
        for days, score in ((3, 9), (2, 8), (1, 7), (0, 6))
    ]
    await seed(app_sessions, views, [])
    await measure(app_sessions)
    await sign_in(web)
    page = await web.get(f"/analytics?hotel_id={hotel}", headers=HTML)
    block = kpi(page, "satisfaction")
    assert "▼ −1,00 na última janela" in block and 'class="trend worse"' in block
    assert "Em queda há três janelas seguidas" in block
    assert "satisfaction_avg fell in each of the last 3 day windows" in page.text  # the stored trend alert


async def test_bad_dashboard_filters_are_said_on_the_page(staff_settings, web):
    await sign_in(web)
    backwards = await web.get("/analytics?since=2025-03-10&until=2025-03-01", headers=HTML)
    assert backwards.status_code == 422 and "Até: não pode ser antes de De" in backwards.text
    not_a_date = await web.get("/analytics?since=10/03/2025", headers=HTML)
    assert not_a_date.status_code == 422 and "não é uma data" in not_a_date.text
    too_long = await web.get("/analytics?since=2020-01-01", headers=HTML)
    assert too_long.status_code == 422 and "no máximo 92 dias" in too_long.text


async def test_measure_now_runs_the_schedules_workflow_and_shows_its_figures(app_sessions, worker, web):
    hotel = f"hotel-{uuid.uuid4().hex[:6]}"
    await seed_dashboard(app_sessions, hotel)
    await sign_in(web)
    page = await web.get(f"/analytics?hotel_id={hotel}", headers=HTML)
    forged = await web.post("/analytics/measure", data={"back": f"/analytics?hotel_id={hotel}"})
    assert forged.status_code == 403
    async with worker():
        done = await web.post("/analytics/measure",
                              data={"csrf_token": csrf(page), "back": f"/analytics?hotel_id={hotel}"})
        elsewhere = await web.post("/analytics/measure",
                                   data={"csrf_token": csrf(page), "back": "https://evil.example/"})
    assert done.status_code == 303 and done.headers["location"] == f"/analytics?hotel_id={hotel}"
    again = await web.get(done.headers["location"], headers=HTML)
    assert number(kpi(again, "satisfaction")) == "7,33" and "Medido às" in again.text
    assert elsewhere.status_code == 303 and elsewhere.headers["location"] == "/analytics"  # never off the dashboard


def test_charts_are_plain_escaped_svg():
    chart = svg_charts.line_chart(
        chart_id="c1", title="<b>Satisfação</b>",
        points=[svg_charts.Point("<x>", 3.0), svg_charts.Point("b", None), svg_charts.Point("c", 6.0),
                svg_charts.Point("d", 7.0)],
        target=4.5)
    assert str(chart).startswith('<svg class="chart"') and "&lt;b&gt;Satisfação&lt;/b&gt;" in chart
    assert "&lt;x&gt;" in chart and "<x>" not in chart
    assert chart.count('<circle class="dot missed"') == 1 and chart.count("<circle") == 3
    assert chart.count("<polyline") == 1  # the gap leaves the first dot alone
    assert 'class="target"' in chart and "style=" not in chart
    bars = svg_charts.bar_chart(chart_id="c2", title="t", bars=[svg_charts.Point("E-mail", 20.0),
                                                                 svg_charts.Point("WhatsApp", 1.0)], limit=5.0)
    assert bars.count('class="bar missed"') == 1 and bars.count('class="bar"') == 1


def test_a_period_is_whole_local_days_or_weeks():
    moment = datetime(2025, 3, 12, 2, 0, tzinfo=UTC)  # 11/03 23:00 in São Paulo
    days = dashboard.Period.choose(since=None, until=None, kind=dashboard.WindowKind.day,
                                        zone=SAO_PAULO, now=moment)
    assert (days.first.isoformat(), days.last.isoformat()) == ("2025-02-26", "2025-03-11")
    assert len(days.windows(moment)) == 14 and days.windows(moment)[-1].start.hour == 0
    weeks = dashboard.Period.choose(since=None, until=None, kind=dashboard.WindowKind.week,
                                         zone=SAO_PAULO, now=moment)
    assert weeks.first.weekday() == 0 and len(weeks.windows(moment)) == 8
    assert weeks.windows(moment)[-1].start.date().isoformat() == "2025-03-10"
