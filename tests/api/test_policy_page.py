"""The staff page `/policy` (role admin): the policy in force, a draft tried against a
sample or a running journey side by side with it, and its effect on running journeys,
as an administrator's browser sees them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from guest_journey.database import SessionFactory, create_engine, session_factory
from guest_journey.journeys import Stage, StepStatus
from guest_journey.policy import parse_policy
from guest_journey.read_model import save_journey
from guest_journey.reservations import Guest, Reservation
from guest_journey.schema import upgrade_database
from guest_journey.settings import Settings
from tests.api.test_staff_pages import HTML, KEYS, OPS, bearer, client_for, csrf, sign_in, view
from workflows.plan import INVITATION_KEY, JourneyFacts, plan_steps

ADMIN = "admin-key-0123456789"
IN_FORCE = "quiet_hours: null\nhotels:\n  copacabana: {hotel_name: Copacabana Beach}\n"
DRAFT = "quiet_hours: null\ncheckin_reminders_before_arrival: [PT48H]\nhotels:\n  copacabana: {hotel_name: Copacabana Beach}\n"


@pytest.fixture
def policy_settings(api_settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "in-force.yaml"
    path.write_text(IN_FORCE)
    return api_settings.model_copy(update={"api_keys": KEYS, "policy_file": path})


@pytest.fixture
async def admin(policy_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(policy_settings, "203.0.113.7"):
        signed_in = await sign_in(client, ADMIN, next="/policy")
        assert signed_in.status_code == 303, signed_in.text
        yield client


async def seed_running(sessions: SessionFactory, now: datetime) -> None:
    """Two running journeys at copacabana, planned by the policy in force: one arriving in
    ten days (nothing sent), one in 30 hours whose invitation was already sent."""
    hotel = parse_policy(yaml.safe_load(IN_FORCE)).for_hotel("copacabana")
    async with sessions() as session:
        for reservation_id, arrive_in, sent in (("R-FAR", timedelta(days=10), False),
                                                 ("R-SOON", timedelta(hours=30), True)):
            arrival = now + arrive_in
            reservation = Reservation(reservation_id=reservation_id, hotel_id="copacabana",
                                      guest=Guest(name="Ana Souza", email="ana@example.com"),
                                      arrival=arrival, departure=arrival + timedelta(days=2))
            steps = plan_steps(reservation, hotel, JourneyFacts(), now - timedelta(days=5))
            if sent:
                steps = [step.model_copy(update={"status": StepStatus.done, "done_at": step.scheduled_for})
                         if step.key == INVITATION_KEY else step for step in steps]
            await save_journey(session=session, view=view(reservation_id, arrival=arrival, hotel_id="copacabana",
                                                          stage=Stage.pre_arrival, steps=steps))
        await session.commit()


@pytest.fixture
async def sessions_with_journeys(policy_settings: Settings) -> AsyncIterator[SessionFactory]:
    """The app's own database (the settings' data dir), with two running journeys."""
    engine = create_engine(policy_settings.resolved_database_url)
    await upgrade_database(engine)
    sessions = session_factory(engine)
    await seed_running(sessions, datetime.now(UTC))
    yield sessions
    await engine.dispose()


async def test_only_an_admin_sees_the_policy_page(policy_settings):
    async for client in client_for(policy_settings, "203.0.113.7"):
        refused = await client.get("/policy", headers={**HTML, **bearer(OPS)})
        assert refused.status_code == 403
        assert "papel admin" in refused.text
        panel = await client.get("/guest-experience", headers={**HTML, **bearer(OPS)})
        assert 'href="/policy"' not in panel.text  # not in the ops navigation


async def test_the_policy_in_force_for_each_hotel_and_how_to_load_a_new_one(admin, policy_settings):
    page = await admin.get("/policy", headers=HTML)

    assert page.status_code == 200
    assert 'href="/policy" aria-current="page"' in page.text
    in_force = re.search(r'id="in-force-copacabana">(.*?)</details>', page.text, re.S)
    assert in_force, page.text
    assert "hotel_name: Copacabana Beach" in in_force.group(1)
    assert "checkin_invite_before_arrival: P3D" in in_force.group(1)
    assert "quiet_hours: null" in in_force.group(1)
    assert str(policy_settings.policy_file) in page.text
    assert "reinicie a API e o worker" in page.text


async def test_bad_yaml_shows_every_error_with_its_line(admin):
    form = await admin.get("/policy", headers=HTML)
    draft = "checkin_invite_before_arrival: 72h\nquiet_hours:\n  start: \"22:00\"\n  end: \"08:00\"\n" \
            "  messages: {upsell: arrival_margin}\nhotels:\n  lisboa: {quiet_hour: {}}\n"

    tried = await admin.post("/policy", data={"csrf_token": csrf(form), "draft": draft})

    assert tried.status_code == 422
    problems = re.findall(r"<li>(.*?)</li>", re.search(r'id="problems">(.*?)</section>', tried.text, re.S).group(1))
    assert problems == [
        "linha 1: checkin_invite_before_arrival: &#39;72h&#39; is not an ISO 8601 duration; "
        "write it like &#39;PT72H&#39;, &#39;PT30M&#39; or &#39;P2D&#39;",
        "linha 5: quiet_hours.messages.upsell: arrival_margin is for the check-in messages "
        "(checkin_invitation, checkin_reminder), which go before arrival; use wait or send",
        "linha 7: hotels.lisboa.quiet_hour: unknown key; did you mean &#39;quiet_hours&#39;?",
    ]
    assert draft.splitlines()[0] in tried.text  # the draft stays in the form to be corrected


async def test_a_draft_side_by_side_on_a_sample_and_its_effect_on_running_journeys(admin, sessions_with_journeys):
    form = await admin.get("/policy", headers=HTML)

    tried = await admin.post("/policy", data={"csrf_token": csrf(form), "draft": DRAFT, "hotel_id": "copacabana"})

    assert tried.status_code == 200, tried.text
    changes = {key: change for change, key in re.findall(r'<tr class="change-(\w+)" data-key="([^"]+)">', tried.text)}
    assert changes["checkin_reminder:P2D"] == "gains"
    assert changes["checkin_reminder:PT24H"] == "loses"
    assert changes["checkin_reminder:PT3H"] == "loses"
    assert changes[INVITATION_KEY] == "same"
    # Running journeys: the one arriving in ten days gains the 48 h reminder; the one arriving
    # in 30 hours is past it (a reminder is never sent late). Both lose the other two.
    assert "2 de 2 jornadas em andamento mudariam" in tried.text
    effect = {key: (int(gains), int(loses), int(moves)) for key, gains, loses, moves in re.findall(
        r'<tr data-key="([^"]+)">\s*<th scope="row">[^<]*</th><td class="gains">(\d+)</td>'
        r'<td class="loses">(\d+)</td><td class="moves">(\d+)</td>', tried.text)}
    assert effect == {"checkin_reminder:PT24H": (0, 2, 0), "checkin_reminder:PT3H": (0, 2, 0),
                      "checkin_reminder:P2D": (1, 0, 0)}
    assert "R-FAR (copacabana)" in tried.text
    assert "só adota a nova política nos passos ainda não enviados" in tried.text


async def test_a_draft_tried_on_a_running_journey_keeps_what_was_sent(admin, sessions_with_journeys):
    form = await admin.get("/policy", headers=HTML)
    draft = DRAFT.replace("[PT48H]", "[PT24H, PT3H]\ncheckin_invite_before_arrival: PT24H")

    tried = await admin.post("/policy", data={"csrf_token": csrf(form), "draft": draft, "reservation_id": "R-SOON"})

    assert tried.status_code == 200, tried.text
    assert "jornada em andamento: os passos já enviados ficam como estão" in tried.text
    invitation = re.search(rf'data-key="{INVITATION_KEY}">(.*?)</tr>', tried.text, re.S).group(1)
    assert invitation.count("done") == 2  # sent: the same under both policies
    missing = await admin.post("/policy", data={"csrf_token": csrf(form), "draft": draft, "reservation_id": "R-NONE"})
    assert missing.status_code == 404
    assert "nenhuma jornada em andamento com a reserva &#39;R-NONE&#39;" in missing.text


async def test_a_key_limited_to_some_hotels_sees_only_their_policies(policy_settings):
    path = policy_settings.policy_file
    assert path is not None
    path.write_text(IN_FORCE + "  lisboa: {hotel_timezone: Europe/Lisbon}\n")
    scoped = policy_settings.model_copy(update={"api_keys": KEYS + ",admin-copa-0123456789:admin:copacabana"})
    async for client in client_for(scoped, "203.0.113.7"):
        page = await client.get("/policy", headers={**HTML, **bearer("admin-copa-0123456789")})
        every = await client.get("/policy", headers={**HTML, **bearer(ADMIN)})

    assert page.status_code == 200
    assert 'id="in-force-copacabana"' in page.text
    assert "lisboa" not in page.text and "Europe/Lisbon" not in page.text
    assert 'id="in-force-lisboa"' in every.text
