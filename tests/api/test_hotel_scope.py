"""Hotel-scoped access (issue 13, item 3), through real HTTP: a key `key:role:hotel-a|hotel-c`
(or a staff session signed in with one) sees and changes only those hotels (`api.access`).

The auth matrix (`test_auth_matrix.py`) checks every route with a scoped key against
finished journeys; here running journeys, lists, the staff pages, a signed-in session
and `/metrics` are looked at from outside.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from communications.message_store import MessageRecord
from guest_journey.database import SessionFactory, utcnow
from guest_journey.journeys import JourneyView, Stage, workflow_id_for
from guest_journey.read_model import save_journey
from guest_journey.reservations import Guest
from guest_journey.settings import Settings
from guest_journey.telemetry import kpis_measured
from tests.api.test_api_security import http
from tests.api.test_guest_pages import csrf
from tests.api.test_reservations import reservation_body
from tests.workflows.journeys import end, now

HOTEL_A, HOTEL_B, HOTEL_C = "hotel-a", "hotel-b", "hotel-c"
ADMIN = "admin-key-" + "x" * 24
RES_A = "res-a-key-" + "r" * 24  # reservations, hotel-a only
OPS_A = "ops-a-key-" + "o" * 24  # ops, hotel-a and hotel-c
OPS_B = "ops-b-key-" + "b" * 24  # ops, hotel-b only
KEYS = f"{ADMIN}:admin,{RES_A}:reservations:{HOTEL_A},{OPS_A}:ops:{HOTEL_A}|{HOTEL_C},{OPS_B}:ops:{HOTEL_B}"
HTML = {"accept": "text/html"}


def key(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


@pytest.fixture
def scoped(api_settings: Settings) -> Settings:
    # http: the session cookie is Secure over https, and the test client speaks plain HTTP.
    return api_settings.model_copy(update={"api_keys": KEYS, "public_base_url": "http://127.0.0.1"})


def rid(label: str) -> str:
    return f"R-SCOPE-{label}-{uuid.uuid4().hex[:8]}"


async def stored_journey(sessions: SessionFactory, reservation_id: str, hotel: str, stage: Stage) -> None:
    async with sessions() as session:
        await save_journey(session=session, view=JourneyView(
            reservation_id=reservation_id, workflow_id=workflow_id_for(reservation_id), hotel_id=hotel, stage=stage,
            guest=Guest(name="Bia Lima", email=f"{reservation_id.lower()}@example.com"),
            arrival=utcnow() + timedelta(days=3), departure=utcnow() + timedelta(days=5),
        ))


async def stored_messages(sessions: SessionFactory, *records: MessageRecord) -> None:
    async with sessions() as session:
        for record in records:
            session.add(record)
        await session.commit()


def outbound(hotel: str | None, reservation_id: str | None, status: str = "delivered") -> MessageRecord:
    return MessageRecord(id=str(uuid.uuid4()), reservation_id=reservation_id, hotel_id=hotel, direction="outbound",
                         channel="email", template="free_text", status=status, reason="mailbox full",
                         recipient="guest@example.com", created_at=utcnow() - timedelta(minutes=5))


# -- reservations: running journeys ------------------------------------------------------


async def test_a_scoped_reservations_key_creates_and_changes_only_its_hotels(env, worker, scoped, sessions):
    own, other, refused = rid("A"), rid("B"), rid("X")
    arrival = await now(env) + timedelta(days=3)
    async with worker(), http(scoped) as web:
        created = await web.put(f"/reservations/{own}", json={**reservation_body(arrival), "hotel_id": HOTEL_A},
                                headers=key(RES_A))
        elsewhere = await web.put(f"/reservations/{refused}", json={**reservation_body(arrival), "hotel_id": HOTEL_B},
                                  headers=key(RES_A))
        started = await web.put(f"/reservations/{other}", json={**reservation_body(arrival), "hotel_id": HOTEL_B},
                                headers=key(ADMIN))
        # another hotel's running journey, whether or not the read model has it yet
        taken = await web.put(f"/reservations/{other}", json={**reservation_body(arrival), "hotel_id": HOTEL_A},
                              headers=key(RES_A))
        cancelled = await web.delete(f"/reservations/{other}", headers=key(RES_A))
        event = await web.post(f"/reservations/{other}/events", json={"type": "checked_in"}, headers=key(RES_A))
        looked_up = await web.get(f"/guest-experience/{other}", headers=key(OPS_A))
        asked_the_journey = await web.get(f"/guest-experience/{other}", params={"consistent": "true"},
                                          headers=key(OPS_A))
        own_looked_up = await web.get(f"/guest-experience/{own}", headers=key(OPS_A))
        after = await web.get(f"/guest-experience/{other}", headers=key(OPS_B))
        never_started = await web.get(f"/guest-experience/{refused}", headers=key(ADMIN))
        await end(env, own)
        await end(env, other)
    assert created.status_code == 201, created.text
    assert elsewhere.status_code == 403, elsewhere.text
    assert "hotel-b" in elsewhere.json()["detail"] and "limited to hotel-a" in elsewhere.json()["detail"]
    assert never_started.status_code == 404  # the refused PUT started nothing
    assert started.status_code == 201, started.text
    for answer in (taken, cancelled, event, looked_up, asked_the_journey):
        assert answer.status_code == 404, answer.text
        assert answer.json() == {"detail": f"no journey for reservation {other!r}"}  # as if it did not exist
    assert own_looked_up.status_code == 200 and own_looked_up.json()["hotel_id"] == HOTEL_A
    assert after.status_code == 200
    assert after.json()["stage"] == "pre_arrival" and after.json()["hotel_id"] == HOTEL_B  # untouched


# -- journey ops and communications lists --------------------------------------------------


async def test_lists_and_summaries_count_only_the_keys_hotels(scoped, sessions):
    await stored_journey(sessions, "VOL-A-1", HOTEL_A, Stage.pre_arrival)
    await stored_journey(sessions, "VOL-C-1", HOTEL_C, Stage.in_stay)
    await stored_journey(sessions, "VOL-B-1", HOTEL_B, Stage.pre_arrival)
    await stored_journey(sessions, "VOL-B-2", HOTEL_B, Stage.pre_arrival)
    await stored_messages(sessions, outbound(HOTEL_A, "VOL-A-1"), outbound(HOTEL_B, "VOL-B-1"),
                          outbound(HOTEL_B, "VOL-B-2", "failed"), outbound(None, None))
    async with http(scoped) as web:
        volume_a = (await web.get("/guest-experience/journey", headers=key(OPS_A))).json()
        volume_b = (await web.get("/guest-experience/journey", headers=key(OPS_B))).json()
        volume_all = (await web.get("/guest-experience/journey", headers=key(ADMIN))).json()
        summary_a = (await web.get("/communications/delivery/summary", headers=key(OPS_A))).json()
        summary_b = (await web.get("/communications/delivery/summary", headers=key(OPS_B))).json()
        summary_all = (await web.get("/communications/delivery/summary", headers=key(ADMIN))).json()
        one_of_its = await web.get("/communications/delivery/summary", params={"hotel_id": HOTEL_C},
                                   headers=key(OPS_A))
        not_its = await web.get("/communications/delivery/summary", params={"hotel_id": HOTEL_B},
                                headers=key(OPS_A))
    assert volume_a["active"] == 2 and volume_a["by_stage"]["in_stay"] == 1
    assert volume_b["active"] == 2 and volume_b["by_stage"]["in_stay"] == 0
    assert volume_all["active"] == 4
    assert (summary_a["total"], summary_a["failed"]) == (1, 0)
    assert (summary_b["total"], summary_b["failed"]) == (2, 1)
    assert summary_all["total"] == 4  # the message of no hotel counts for every-hotel keys only
    assert one_of_its.status_code == 200 and one_of_its.json()["total"] == 0
    assert not_its.status_code == 403 and "hotel-b" in not_its.json()["detail"]


async def test_snapshots_of_another_hotels_reservation_are_reported_unknown(scoped, sessions):
    await stored_journey(sessions, "SNAP-B-1", HOTEL_B, Stage.pre_arrival)
    async with http(scoped) as web:
        answer = await web.post("/guest-experience/journey", headers=key(OPS_A), json={
            "mode": "async", "snapshots": [{"reservation_id": "SNAP-B-1", "preferences": {"pillow": "firm"}}],
        })
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 0
    assert answer.json()["errors"] == [{"reservation_id": "SNAP-B-1", "detail": "no journey for reservation 'SNAP-B-1'"}]


async def test_inbound_messages_of_a_scoped_key_match_only_its_hotels(scoped, sessions):
    await stored_journey(sessions, "IN-B-1", HOTEL_B, Stage.pre_arrival)
    await stored_journey(sessions, "IN-A-1", HOTEL_A, Stage.pre_arrival)
    guest_b = "in-b-1@example.com"
    async with http(scoped) as web:
        by_sender = await web.post("/communications/messages/inbound", headers=key(OPS_A), json={
            "channel": "email", "sender": guest_b, "body": "Chego às 22h"})
        named = await web.post("/communications/messages/inbound", headers=key(OPS_A), json={
            "channel": "email", "sender": guest_b, "body": "Chego às 22h", "reservation_id": "IN-B-1"})
        own = await web.post("/communications/messages/inbound", headers=key(OPS_A), json={
            "channel": "email", "sender": "in-a-1@example.com", "body": "Obrigada"})
        theirs = await web.post("/communications/messages/inbound", headers=key(OPS_B), json={
            "channel": "email", "sender": guest_b, "body": "Chego às 22h"})
    assert by_sender.status_code == 404 and "no journey of your hotels" in by_sender.json()["detail"]
    assert named.status_code == 404 and named.json()["detail"] == "no journey for reservation 'IN-B-1'"
    assert own.status_code == 201 and own.json()["reservation_id"] == "IN-A-1"
    assert theirs.status_code == 201 and theirs.json()["reservation_id"] == "IN-B-1"
    async with sessions() as session:
        inbound = (await session.exec(select(MessageRecord).where(MessageRecord.direction == "inbound"))).all()
    assert sorted(message.hotel_id or "" for message in inbound) == [HOTEL_A, HOTEL_B]  # nothing stored when refused


# -- the staff pages, signed in with a scoped key -------------------------------------------


async def sign_in(web: httpx.AsyncClient, api_key: str) -> None:
    form = await web.get("/login", headers=HTML)
    answer = await web.post("/login", data={"api_key": api_key, "next": "/guest-experience", "csrf_token": csrf(form)})
    assert answer.status_code == 303, answer.text


async def test_a_session_signed_in_with_a_scoped_key_sees_only_its_hotels(scoped, sessions):
    await stored_journey(sessions, "PANEL-A-1", HOTEL_A, Stage.pre_arrival)
    await stored_journey(sessions, "PANEL-B-1", HOTEL_B, Stage.pre_arrival)
    unmatched = MessageRecord(id=str(uuid.uuid4()), direction="inbound", channel="email", status="received",
                              body_text="Quem é?", sender="someone@example.com", created_at=utcnow())
    await stored_messages(sessions, outbound(HOTEL_A, "PANEL-A-1", "failed"), outbound(HOTEL_B, "PANEL-B-1", "failed"),
                          unmatched)
    async with http(scoped) as web:
        await sign_in(web, OPS_A)
        panel = await web.get("/guest-experience", headers=HTML)
        own = await web.get("/guest-experience", params={"reservation_id": "PANEL-A-1"}, headers=HTML)
        other = await web.get("/guest-experience", params={"reservation_id": "PANEL-B-1"}, headers=HTML)
        reply = await web.post("/guest-experience", data={
            "csrf_token": csrf(panel), "reservation_id": "PANEL-B-1", "action": "reply", "reply_channel": "email",
            "sender": "panel-b-1@example.com", "reply_body": "Ligou", "request_id": uuid.uuid4().hex})
        analytics = await web.get("/analytics", headers=HTML)
        analytics_other = await web.get("/analytics", params={"hotel_id": HOTEL_B}, headers=HTML)
        analytics_c = await web.get("/analytics", params={"hotel_id": HOTEL_C}, headers=HTML)
    async with http(scoped) as web:
        await sign_in(web, ADMIN)
        admin_panel = await web.get("/guest-experience", headers=HTML)
        admin_analytics = await web.get("/analytics", headers=HTML)

    assert panel.status_code == 200
    assert "PANEL-A-1" in panel.text and "PANEL-B-1" not in panel.text and HOTEL_B not in panel.text
    assert "someone@example.com" not in panel.text and "Quem é?" not in panel.text  # unmatched: no hotel's
    assert "PANEL-B-1" in admin_panel.text and "PANEL-A-1" in admin_panel.text
    assert own.status_code == 200 and 'id="journey-title"' in own.text
    assert other.status_code == 404 and 'id="journey-title"' not in other.text
    assert "Nenhuma jornada encontrada" in other.text and HOTEL_B not in other.text
    assert reply.status_code == 404, reply.text
    async with sessions() as session:
        inbound = (await session.exec(select(MessageRecord).where(MessageRecord.reservation_id == "PANEL-B-1",
                                                                  MessageRecord.direction == "inbound"))).all()
    assert inbound == []

    assert analytics.status_code == 200, analytics.text
    options = re.findall(r'<option value="([^"]*)"', analytics.text.split('id="hotel_id"')[1].split("</select>")[0])
    assert options == [HOTEL_A, HOTEL_C]  # its hotels, and no "every hotel"
    assert 'id="scope">hotel-a' in analytics.text  # one of its hotels at a time
    assert analytics_other.status_code == 403 and "hotel-b" in analytics_other.text
    assert analytics_c.status_code == 200
    options = re.findall(r'<option value="([^"]*)"', admin_analytics.text.split('id="hotel_id"')[1].split("</select>")[0])
    assert options[0] == "" and HOTEL_B in options


async def test_a_session_follows_its_key_when_the_keys_hotels_change(scoped, sessions):
    await stored_journey(sessions, "MOVE-B-1", HOTEL_B, Stage.pre_arrival)
    async with http(scoped) as web:
        await sign_in(web, OPS_A)
        before = await web.get("/guest-experience", params={"reservation_id": "MOVE-B-1"}, headers=HTML)
        cookies = dict(web.cookies)
    widened = scoped.model_copy(update={"api_keys": KEYS.replace(f"{HOTEL_A}|{HOTEL_C}", f"{HOTEL_A}|{HOTEL_B}")})
    async with http(widened) as web:
        web.cookies.update(cookies)
        after = await web.get("/guest-experience", params={"reservation_id": "MOVE-B-1"}, headers=HTML)
    assert before.status_code == 404
    assert after.status_code == 200 and 'id="journey-title"' in after.text


# -- /metrics ----------------------------------------------------------------------------------


def series(text: str, name: str) -> set[str]:
    return {line.split("}")[0] for line in text.splitlines() if line.startswith(name + "{")}


async def test_metrics_with_a_scoped_key_carry_only_its_hotels_series(scoped):
    kpis_measured(HOTEL_A, "day", {"nps": 40.0})
    kpis_measured(HOTEL_B, "day", {"nps": -10.0})
    kpis_measured(None, "day", {"nps": 15.0})
    async with http(scoped) as web:
        public = await web.get("/metrics")
        for_a = await web.get("/metrics", headers=key(OPS_A))
        unknown = await web.get("/metrics", headers=key("not-a-key-" + "z" * 24))
    assert public.status_code == 200
    assert {'guest_journey_kpi_nps{hotel="hotel-a",window="day"',
            'guest_journey_kpi_nps{hotel="hotel-b",window="day"'} <= series(public.text, "guest_journey_kpi_nps")
    assert for_a.status_code == 200
    assert series(for_a.text, "guest_journey_kpi_nps") == {'guest_journey_kpi_nps{hotel="hotel-a",window="day"'}
    assert "hotel-b" not in for_a.text
    assert not [line for line in for_a.text.splitlines() if line and not line.startswith("#") and "hotel=" not in line]
    assert unknown.status_code == 401

