"""Staff input cannot stall a journey: `POST /communications/send` and the panel's
send form take only the context keys staff may give, and an `in_reply_to` that is
one of our message ids; the journey's own values (its dates above all) cannot be
given."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.api import test_staff_pages
from tests.api.test_reservations import reservation_body
from tests.api.test_staff_pages import HTML, OPS, RES, bearer
from tests.workflows.journeys import end, now

staff_settings = test_staff_pages.staff_settings
web = test_staff_pages.web


@pytest.mark.parametrize(
    ("context", "named", "says"),
    [
        ({"body": "Olá", "colour": "blue"}, "context.colour", "unknown context key 'colour'"),
        ({"body": "Olá", "arrival": "2020-01-01T14:00:00+00:00"}, "context.arrival", "filled by the journey"),
        ({"body": "Olá", "departure": "not a date"}, "context.departure", "filled by the journey"),
        ({"body": "Olá", "guest_name": "Someone else"}, "context.guest_name", "filled by the journey"),
        ({"body": "Olá", "checkin_url": "https://evil.example"}, "context.checkin_url", "filled by the journey"),
        ({"body": "Olá", "body_id": str(uuid.uuid4())}, "context.body_id", "unknown context key"),
        ({"body": 42}, "context.body", "must be text"),
        ({"body": "Olá", "journey_stage": "somewhere"}, "context.journey_stage", "one of"),
    ],
)
async def test_a_context_key_staff_may_not_give_gets_422_naming_it(api, context, named, says):
    answer = await api.post("/communications/send", json={
        "reservation_id": "R1", "template": "free_text", "context": context})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith(f"{named}: ") and says in answer.json()["detail"]


@pytest.mark.parametrize(
    "in_reply_to",
    ["abc", "<0b6f7a5e-3c1d-4f0a-9a57-5d2e8c41b7a3@hotel.example>", "0B6F7A5E-3C1D-4F0A-9A57-5D2E8C41B7A3",
     "0b6f7a5e3c1d4f0a9a575d2e8c41b7a3", "0b6f7a5e-3c1d-4f0a-9a57-5d2e8c41b7a3\n", "x" * 65],
)
async def test_an_in_reply_to_that_is_not_one_of_our_message_ids_gets_422(api, in_reply_to):
    answer = await api.post("/communications/send", json={
        "reservation_id": "R1", "template": "free_text", "in_reply_to": in_reply_to, "context": {"body": "Olá"}})
    assert answer.status_code == 422, answer.text
    assert "in_reply_to" in answer.text


async def test_what_staff_may_give_still_passes(api):
    """Valid input goes on to the journey (none here: 404)."""
    for request in (
        {"template": "free_text", "in_reply_to": str(uuid.uuid4()),
         "context": {"body": "Olá", "journey_stage": "pre_arrival", "upsell_offer": None}},
        {"template": "upsell_follow_up", "context": {"upsell_offer": "late_checkout", "body": "not used"}},
        {"template": "checkin_reminder", "context": {"journey_stage": "pre_arrival"}},
    ):
        answer = await api.post("/communications/send", json={"reservation_id": "NOPE", **request})
        assert answer.status_code == 404, answer.text


async def test_the_panel_refuses_the_same_context_keys_and_sends_nothing(env, worker, email, web):
    rid = f"R-PANEL-{uuid.uuid4().hex[:8]}"
    async with worker():
        put = await web.put(f"/reservations/{rid}", json=reservation_body(await now(env) + timedelta(days=20)),
                            headers=bearer(RES))
        assert put.status_code == 201, put.text
        form = {"action": "send", "reservation_id": rid, "template": "checkin_reminder",
                "request_id": uuid.uuid4().hex}
        dates = await web.post("/guest-experience", headers={**bearer(OPS), **HTML},
                               data={**form, "arrival": "2020-01-01T14:00:00+00:00"})
        unknown = await web.post("/guest-experience", headers={**bearer(OPS), **HTML},
                                 data={**form, "colour": "blue"})
        bad_reply = await web.post("/guest-experience", headers={**bearer(OPS), **HTML},
                                   data={**form, "template": "free_text", "body": "Olá", "in_reply_to": "abc"})
        chat_reply = await web.post("/guest-experience", headers={**bearer(OPS), **HTML}, data={
            "action": "chat", "reservation_id": rid, "chat_body": "Olá", "chat_in_reply_to": "abc"})
        journey = (await web.get(f"/guest-experience/{rid}", headers=bearer(OPS))).json()
        await end(env, rid)

    assert dates.status_code == 422 and "arrival: a jornada preenche este valor" in dates.text
    assert unknown.status_code == 422 and "colour: campo desconhecido" in unknown.text
    assert bad_reply.status_code == 422 and 'id="send-in_reply_to-error"' in bad_reply.text
    assert chat_reply.status_code == 422 and "escolha uma mensagem da lista" in chat_reply.text
    assert [step for step in journey["steps"] if step["kind"] == "manual"] == []
    assert email.sent == []
