"""The reservation system's routes, through HTTP, against the test Temporal server."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.workflows.journeys import end, finish, now


def reservation_body(arrival: datetime, nights: int = 2, **guest: Any) -> dict[str, Any]:
    return {
        "hotel_id": "hotel-1",
        "guest": {"name": "Ana Souza", "email": "ana@example.com", "language": "pt-BR", **guest},
        "arrival": arrival.isoformat(),
        "departure": (arrival + timedelta(days=nights)).isoformat(),
        "room_type": "deluxe",
    }


async def test_first_put_starts_the_journey_later_puts_update_it(env, worker, email, api):
    arrival = await now(env) + timedelta(days=2)
    async with worker():
        first = await api.put("/reservations/R100", json=reservation_body(arrival))
        assert first.status_code == 201, first.text
        assert first.json() == {"reservation_id": "R100", "workflow_id": "journey-R100", "stage": "pre_arrival"}

        again = await api.put("/reservations/R100", json=reservation_body(arrival))
        assert again.status_code == 200
        moved = await api.put("/reservations/R100", json=reservation_body(arrival + timedelta(days=1)))
        assert moved.status_code == 200

        await email.wait_for(1)
        running = (await api.get("/guest-experience/R100")).json()
        await end(env, "R100")  # returns once the invitation's outcome is recorded
        journey = (await api.get("/guest-experience/R100")).json()
    assert running["stage"] == "pre_arrival" and running["hotel_id"] == "hotel-1"
    assert journey["stage"] == "cancelled"
    steps = {step["key"]: step for step in journey["steps"]}
    assert steps["checkin_invitation"]["status"] == "done"
    reminder_at = datetime.fromisoformat(steps["checkin_reminder:PT24H"]["scheduled_for"])
    assert reminder_at == arrival + timedelta(days=1) - timedelta(hours=24)
    assert [m["template"] for m in journey["messages"]] == ["checkin_invitation"]
    assert journey["messages"][0]["status"] == "sent"
    assert email.templates() == ["checkin_invitation"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"departure": "2030-01-01T10:00:00+00:00", "arrival": "2030-01-02T10:00:00+00:00"}, "departure"),
        ({"guest": {"name": "Ana", "phone": "11 9999"}}, "phone"),
        ({"guest": {"name": "Ana", "language": "xx-QQ"}}, "language"),
        ({"arrival": "2030-01-01T10:00:00"}, "arrival"),
        ({"guest": {"name": "Ana", "preferred_channels": ["fax"]}}, "preferred_channels"),
        ({"hotel_id": ""}, "hotel_id"),
    ],
)
async def test_invalid_reservation_gets_422_naming_the_field(api, change, field):
    body = reservation_body(datetime.fromisoformat("2030-01-01T14:00:00+00:00"))
    body.update(change)
    answer = await api.put("/reservations/R1", json=body)
    assert answer.status_code == 422
    assert field in answer.text


async def test_unknown_event_type_gets_422(api):
    answer = await api.post("/reservations/R1/events", json={"type": "teleported"})
    assert answer.status_code == 422
    assert "type" in answer.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/guest-experience/NOPE", None),
        ("DELETE", "/reservations/NOPE", None),
        ("POST", "/reservations/NOPE/events", {"type": "checked_in"}),
    ],
)
async def test_unknown_reservation_gets_404(api, method, path, body):
    answer = await api.request(method, path, json=body)
    assert answer.status_code == 404
    assert "NOPE" in answer.json()["detail"]


async def test_cancel_stops_the_journey_and_it_stays_readable(env, worker, email, api):
    arrival = await now(env) + timedelta(days=10)
    async with worker():
        assert (await api.put("/reservations/R200", json=reservation_body(arrival))).status_code == 201
        cancelled = await api.delete("/reservations/R200")
        assert cancelled.status_code == 200 and cancelled.json()["stage"] == "cancelled"
        again = await api.delete("/reservations/R200")
        assert again.status_code == 200 and again.json()["stage"] == "cancelled"
        await finish(env, env.client.get_workflow_handle("journey-R200"))
        journey = (await api.get("/guest-experience/R200")).json()
        reopened = await api.put("/reservations/R200", json=reservation_body(arrival))
        event = await api.post("/reservations/R200/events", json={"type": "checked_in"})
    assert journey["stage"] == "cancelled"
    assert {step["status"] for step in journey["steps"]} <= {"cancelled", "skipped"}
    assert reopened.status_code == 409 and "cancelled" in reopened.json()["detail"]
    assert event.status_code == 409
    assert email.sent == []


async def test_pms_events_move_the_stage(env, worker, api):
    arrival = await now(env) + timedelta(days=10)
    async with worker():
        await api.put("/reservations/R300", json=reservation_body(arrival))
        checked_in = await api.post("/reservations/R300/events", json={"type": "checked_in"})
        checked_out = await api.post(
            "/reservations/R300/events", json={"type": "checked_out", "at": (arrival + timedelta(days=1)).isoformat()}
        )
        no_show = await api.post("/reservations/R300/events", json={"type": "no_show"})
        await end(env, "R300")
    assert checked_in.json()["stage"] == "in_stay"
    assert checked_out.json()["stage"] == "post_stay"
    assert no_show.status_code == 422 and "checked in" in no_show.json()["detail"]


async def test_temporal_unreachable_gets_503_not_500(api_without_temporal):
    body = reservation_body(datetime.fromisoformat("2030-01-01T14:00:00+00:00"))
    answer = await api_without_temporal.put("/reservations/R1", json=body)
    assert answer.status_code == 503
    assert "Temporal" in answer.json()["detail"]
    health = await api_without_temporal.get("/health/otel")
    assert health.status_code == 503 and health.json()["checks"]["temporal"] != "ok"
