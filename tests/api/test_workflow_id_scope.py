"""Hotels whose reservation ids collide (issue 13, item 2): with
`GUEST_JOURNEY_WORKFLOW_ID_SCOPE=hotel` each hotel's reservation has a journey of its
own, `journey-{hotel_id}-{reservation_id}`, through real HTTP and the `gdpr` command.
The default (`reservation`) is what every other test runs."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from guest_journey.database import SessionFactory, utcnow
from guest_journey.journeys import JourneyView, Stage
from guest_journey.read_model import get_journey, save_journey
from guest_journey.reservations import Guest
from guest_journey.settings import Settings
from tests.api.test_api_security import http
from tests.api.test_hotel_scope import ADMIN, HTML, KEYS, OPS_B, RES_A, key
from tests.api.test_journey_ops import eventually
from tests.api.test_reservations import reservation_body
from tests.test_gdpr import gdpr_cli
from tests.workflows.journeys import end, now

HOTEL_A, HOTEL_B = "hotel-a", "hotel-b"


@pytest.fixture
def per_hotel(api_settings: Settings) -> Settings:
    return api_settings.model_copy(update={
        "api_keys": KEYS, "public_base_url": "http://127.0.0.1", "workflow_id_scope": "hotel",
    })


def shared_id() -> str:
    return f"R-SAME-{uuid.uuid4().hex[:8]}"


async def test_two_hotels_with_the_same_reservation_id_get_a_journey_and_a_guest_each(
    env, worker, email, per_hotel, sessions
):
    rid = shared_id()
    arrival = await now(env) + timedelta(days=3)
    ana = reservation_body(arrival, name="Ana Souza", email="ana@hotel-a.example")
    bia = reservation_body(arrival, name="Bia Lima", email="bia@hotel-b.example")
    async with worker(), http(per_hotel) as web:
        at_a = await web.put(f"/reservations/{rid}", json={**ana, "hotel_id": HOTEL_A}, headers=key(ADMIN))
        at_b = await web.put(f"/reservations/{rid}", json={**bia, "hotel_id": HOTEL_B}, headers=key(ADMIN))
        await email.wait_for(2)
        both = lambda: web.get(f"/guest-experience/{rid}", headers=key(ADMIN))  # noqa: E731
        ambiguous = await eventually(both, lambda answer: answer.status_code == 409)
        panel = await web.get("/guest-experience", params={"reservation_id": rid}, headers={**key(ADMIN), **HTML})
        a_by_hotel = await web.get(f"/guest-experience/{rid}", params={"hotel_id": HOTEL_A}, headers=key(ADMIN))
        b_by_id = await web.get(f"/guest-experience/{HOTEL_B}-{rid}", headers=key(ADMIN))
        b_by_its_key = await web.get(f"/guest-experience/{rid}", headers=key(OPS_B))  # limited to hotel-b
        not_its_hotel = await web.get(f"/guest-experience/{rid}", params={"hotel_id": HOTEL_A}, headers=key(OPS_B))
        cancelled = await web.delete(f"/reservations/{rid}", params={"hotel_id": HOTEL_A}, headers=key(ADMIN))
        by_a_key = await web.post(f"/reservations/{rid}/events", json={"type": "checked_in"}, headers=key(RES_A))
        b_after = await web.get(f"/guest-experience/{rid}", params={"hotel_id": HOTEL_B}, headers=key(ADMIN))
        await end(env, f"{HOTEL_B}-{rid}")

    assert (at_a.status_code, at_b.status_code) == (201, 201), (at_a.text, at_b.text)
    assert at_a.json()["workflow_id"] == f"journey-{HOTEL_A}-{rid}"
    assert at_b.json()["workflow_id"] == f"journey-{HOTEL_B}-{rid}"
    assert at_b.json()["reservation_id"] == f"{HOTEL_B}-{rid}"
    # each guest got their own invitation: the second hotel's was not taken for a repeat
    assert sorted(outgoing.recipient for outgoing in email.sent) == ["ana@hotel-a.example", "bia@hotel-b.example"]
    assert len({outgoing.message_id for outgoing in email.sent}) == 2
    detail = ambiguous.json()["detail"]
    assert HOTEL_A in detail and HOTEL_B in detail and "hotel_id" in detail
    assert panel.status_code == 409  # the panel asks which, linking each hotel's journey
    assert f'reservation_id={HOTEL_A}-{rid}"' in panel.text and f'reservation_id={HOTEL_B}-{rid}"' in panel.text
    assert a_by_hotel.json()["guest"]["name"] == "Ana Souza"
    assert b_by_id.json()["guest"]["name"] == "Bia Lima"
    assert b_by_its_key.status_code == 200 and b_by_its_key.json()["guest"]["name"] == "Bia Lima"
    assert not_its_hotel.status_code == 403
    assert cancelled.status_code == 200 and cancelled.json()["stage"] == "cancelled"
    assert by_a_key.status_code == 409  # hotel-a's journey has finished; the key sees no other
    assert b_after.json()["stage"] == "pre_arrival"  # cancelling hotel-a's left hotel-b's alone
    bias = [outgoing.message_id for outgoing in email.sent if outgoing.recipient == "bia@hotel-b.example"]
    assert [message["id"] for message in b_after.json()["messages"]] == bias  # hotel-b's timeline, only hers


async def test_the_default_scope_keeps_one_journey_per_reservation_id(env, worker, email, api_settings):
    rid = shared_id()
    arrival = await now(env) + timedelta(days=3)
    async with worker(), http(api_settings) as web:
        first = await web.put(f"/reservations/{rid}", json={**reservation_body(arrival), "hotel_id": HOTEL_A})
        other_hotel = await web.put(f"/reservations/{rid}", json={**reservation_body(arrival), "hotel_id": HOTEL_B})
        await end(env, rid)
    assert first.json()["workflow_id"] == f"journey-{rid}"
    assert other_hotel.status_code == 409  # a reservation stays with its hotel


async def test_ids_that_join_alike_never_share_a_journey(env, worker, email, per_hotel):
    rid = shared_id()
    arrival = await now(env) + timedelta(days=3)
    async with worker(), http(per_hotel) as web:
        first = await web.put(f"/reservations/{rid}", json={**reservation_body(arrival), "hotel_id": "x-y"},
                              headers=key(ADMIN))
        alike = await web.put(f"/reservations/y-{rid}", json={**reservation_body(arrival), "hotel_id": "x"},
                              headers=key(ADMIN))
        await end(env, f"x-y-{rid}")
    assert first.json()["workflow_id"] == f"journey-x-y-{rid}"
    assert alike.status_code == 409  # "x" + "y-…" joins to the same id: refused, not merged
    assert "hotel" in alike.json()["detail"]


async def test_ids_too_long_together_are_refused_naming_the_limit(per_hotel):
    async with http(per_hotel) as web:
        answer = await web.put(f"/reservations/R{'1' * 100}",
                               json={**reservation_body(utcnow() + timedelta(days=3)), "hotel_id": "h" * 40},
                               headers=key(ADMIN))
    assert answer.status_code == 422
    assert "at most 128 characters" in answer.json()["detail"]


async def stored(sessions: SessionFactory, hotel: str, rid: str, name: str) -> None:
    async with sessions() as session:
        await save_journey(session=session, view=JourneyView(
            reservation_id=f"{hotel}-{rid}", workflow_id=f"journey-{hotel}-{rid}", hotel_id=hotel,
            stage=Stage.completed, guest=Guest(name=name, email=f"{name.split()[0].lower()}@example.com"),
            arrival=utcnow() - timedelta(days=5), departure=utcnow() - timedelta(days=3),
        ))


async def test_gdpr_names_the_hotel_when_two_hotels_share_the_reservation_id(sessions, settings):
    rid = shared_id()
    await stored(sessions, HOTEL_A, rid, "Ana Souza")
    await stored(sessions, HOTEL_B, rid, "Bia Lima")
    per_hotel = {"GUEST_JOURNEY_WORKFLOW_ID_SCOPE": "hotel"}

    which = await gdpr_cli(settings, "erase", rid, extra_env=per_hotel)
    erased = await gdpr_cli(settings, "erase", rid, "--hotel", HOTEL_B, extra_env=per_hotel)
    exported = await gdpr_cli(settings, "export", f"{HOTEL_A}-{rid}", extra_env=per_hotel)

    assert which.status == 1
    assert f"exists in hotels {HOTEL_A}, {HOTEL_B}" in which.stderr and "--hotel" in which.stderr
    assert erased.status == 0, erased.stderr
    async with sessions() as session:
        a = await get_journey(session=session, reservation_id=f"{HOTEL_A}-{rid}")
        b = await get_journey(session=session, reservation_id=f"{HOTEL_B}-{rid}")
    assert a is not None and a.guest.name == "Ana Souza"  # the other hotel's guest is untouched
    assert b is not None and b.guest.name != "Bia Lima"
    assert exported.status == 0 and "ana@example.com" in exported.stdout
