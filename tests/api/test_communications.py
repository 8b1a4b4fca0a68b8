"""Staff sending and resending messages through the journey."""

from __future__ import annotations

from datetime import timedelta

import pytest

from communications.staff_texts import staff_texts_of
from services.journey_service import journey_handle
from tests.api.test_reservations import reservation_body
from tests.workflows.journeys import end, now


async def test_templates_are_listed_with_channels_languages_and_variables(api):
    answer = await api.get("/communications/templates")
    assert answer.status_code == 200
    templates = {item["name"]: item for item in answer.json()}
    assert {"checkin_invitation", "checkin_reminder", "upsell_offer", "upsell_follow_up",
            "guest_post_stay_feedback", "feedback_reminder", "free_text"} <= set(templates)
    invitation = templates["checkin_invitation"]
    assert set(invitation["channels"]) >= {"email", "whatsapp", "webchat"}
    assert set(invitation["languages"]) >= {"pt-BR", "en", "es"}
    assert "checkin_url" in invitation["variables"]


async def test_a_staff_message_goes_through_the_journey_and_shows_in_its_timeline(env, worker, email, api):
    arrival = await now(env) + timedelta(days=20)
    async with worker():
        await api.put("/reservations/R-SEND-1", json=reservation_body(arrival))
        sent = await api.post("/communications/send", json={
            "reservation_id": "R-SEND-1", "template": "free_text",
            "context": {"journey_stage": "pre_arrival", "body": "Seu quarto estará pronto às 12h."},
        })
        assert sent.status_code == 202, sent.text
        await email.wait_for(1)
        resent = await api.post("/communications/send", json={
            "reservation_id": "R-SEND-1", "template": "upsell_offer",
            "context": {"upsell_offer": "room_upgrade"},
        })
        await email.wait_for(2)
        await end(env, "R-SEND-1")
        journey = (await api.get("/guest-experience/R-SEND-1")).json()

    message_id = sent.json()["message_id"]
    assert sent.json()["status"] == "queued"
    assert "Seu quarto estará pronto às 12h." in email.sent[0].rendered.text
    assert email.sent[0].message_id == message_id
    assert resent.status_code == 202 and email.templates() == ["free_text", "upsell_offer"]
    assert [m["id"] for m in journey["messages"]][:1] == [message_id]
    manual = [step for step in journey["steps"] if step["kind"] == "manual"]
    assert len(manual) == 2 and all(step["status"] == "done" for step in manual)
    assert manual[0]["message_id"] == message_id


async def test_a_staff_text_is_kept_in_the_database_and_the_journey_keeps_only_its_id(env, worker, email, api, sessions):
    arrival = await now(env) + timedelta(days=20)
    text = "Your table for two is booked at 8 pm on the terrace; ask for Marta."
    async with worker():
        await api.put("/reservations/R-TEXT-1", json=reservation_body(arrival))
        sent = await api.post("/communications/send", json={
            "reservation_id": "R-TEXT-1", "template": "free_text", "context": {"body": text},
        })
        await email.wait_for(1)
        history = await journey_handle(env.client, "R-TEXT-1").fetch_history()
        await end(env, "R-TEXT-1")

    assert sent.status_code == 202, sent.text
    assert text in email.sent[0].rendered.text
    assert not any(text.encode() in event.SerializeToString() for event in history.events)
    async with sessions() as session:
        assert [stored.body for stored in await staff_texts_of(session=session, reservation_id="R-TEXT-1")] == [text]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"template": "no_such"}, "no_such"),
        ({"template": "free_text", "context": {}}, "context.body"),
        ({"template": "upsell_offer"}, "context.upsell_offer"),
        ({"template": "free_text", "channel": "fax", "context": {"body": "x"}}, "channel"),
    ],
)
async def test_bad_send_requests_get_422_naming_what_is_wrong(api, body, named):
    answer = await api.post("/communications/send", json={"reservation_id": "R1", **body})
    assert answer.status_code == 422
    assert named in answer.text


async def test_sending_to_an_unknown_reservation_gets_404(api):
    answer = await api.post("/communications/send", json={
        "reservation_id": "NOPE", "template": "free_text", "context": {"body": "hi"}})
    assert answer.status_code == 404


async def test_delivery_summary_counts_what_was_sent_and_how_fast_staff_replied(env, worker, email, api):
    arrival = await now(env) + timedelta(days=2)
    async with worker():
        await api.put("/reservations/R-SUM-1", json=reservation_body(arrival))
        await email.wait_for(1)
        question = (await api.post("/communications/messages/inbound", json={
            "channel": "email", "sender": "ana@example.com", "body": "Tem estacionamento?",
            "reservation_id": "R-SUM-1"})).json()
        await api.post("/communications/send", json={
            "reservation_id": "R-SUM-1", "template": "free_text", "in_reply_to": question["message_id"],
            "context": {"body": "Sim, gratuito."}})
        await email.wait_for(2)
        await end(env, "R-SUM-1")
        summary = await api.get("/communications/delivery/summary", params={"hotel_id": "hotel-1"})
        other_hotel = await api.get("/communications/delivery/summary", params={"hotel_id": "elsewhere"})
        bad_period = await api.get("/communications/delivery/summary", params={
            "since": "2030-01-02T00:00:00+00:00", "until": "2030-01-01T00:00:00+00:00"})
        naive = await api.get("/communications/delivery/summary", params={"since": "2030-01-01T00:00:00"})

    figures = summary.json()
    assert summary.status_code == 200
    assert figures["total"] >= 2 and figures["failed"] == 0 and figures["failure_rate"] == 0.0
    assert figures["by_channel"]["email"]["total"] == figures["total"]
    assert figures["response_time_minutes"]["hotel_replies"] is not None
    assert figures["avg_response_time_minutes"] is not None
    assert other_hotel.json()["total"] == 0 and other_hotel.json()["avg_response_time_minutes"] is None
    assert bad_period.status_code == 422 and "until" in bad_period.text
    assert naive.status_code == 422 and "since" in naive.text
