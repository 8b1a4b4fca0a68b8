"""`POST /reservations/batch`: many reservations at once, each checked as a PUT is; bad
items answered with why while good ones start; a repeated batch changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio.client import WorkflowExecutionStatus

from guest_journey.journeys import workflow_id_for
from guest_journey.settings import Settings
from services.reservation_import import BATCH_LIMIT
from tests.api.conftest import app_client
from tests.api.test_auth_matrix import remote_client
from tests.workflows.journeys import end, now


def item(reservation_id: str, arrival: datetime, hotel_id: str = "hotel-1", **fields: Any) -> dict[str, Any]:
    return {
        "reservation_id": reservation_id, "hotel_id": hotel_id,
        "guest": {"name": "Ana Souza", "email": "ana@example.com", "language": "pt-BR"},
        "arrival": arrival.isoformat(), "departure": (arrival + timedelta(days=2)).isoformat(),
        **fields,
    }


async def test_a_batch_starts_good_reservations_answers_bad_ones_and_a_repeat_changes_nothing(env, worker, api):
    arrival = await now(env) + timedelta(days=20)
    batch = {"reservations": [
        item("BATCH-1", arrival),
        item("BATCH-2", arrival, guest={"name": "Ana", "phone": "11 9999"}),
        {"hotel_id": "hotel-1"},
        item("BATCH-3", arrival, room_type="suite"),
        item("BATCH 4", arrival),
    ]}
    async with worker():
        first = await api.post("/reservations/batch", json=batch)
        again = await api.post("/reservations/batch", json=batch)
        batch["reservations"][3]["room_type"] = "deluxe"
        changed = await api.post("/reservations/batch", json=batch)
        journey = (await api.get("/guest-experience/BATCH-3")).json()
        runs = {rid: await env.client.get_workflow_handle(workflow_id_for(rid)).describe()
                for rid in ("BATCH-1", "BATCH-3")}
        for rid in ("BATCH-1", "BATCH-3"):
            await end(env, rid)

    assert first.status_code == 200, first.text
    answer = first.json()
    assert {key: answer[key] for key in ("started", "updated", "unchanged", "failed")} == {
        "started": 2, "updated": 0, "unchanged": 0, "failed": 3}
    failures = answer["failures"]
    assert [(f["line"], f["reservation_id"]) for f in failures] == [(2, "BATCH-2"), (3, None), (5, "BATCH 4")]
    assert failures[0]["error"].startswith("guest.phone: ")
    assert "reservation_id: Field required" in failures[1]["error"]
    assert "guest: Field required" in failures[1]["error"]
    assert failures[2]["error"].startswith("reservation_id: String should match pattern")

    assert again.json()["unchanged"] == 2 and again.json()["started"] == 0
    assert changed.json()["updated"] == 1 and changed.json()["unchanged"] == 1
    assert journey["room_type"] == "deluxe"
    assert all(run.status is WorkflowExecutionStatus.RUNNING for run in runs.values())  # one run each


async def test_more_reservations_than_the_limit_get_422_naming_it(api):
    too_many = await api.post("/reservations/batch", json={"reservations": [{}] * (BATCH_LIMIT + 1)})
    empty = await api.post("/reservations/batch", json={"reservations": []})
    assert too_many.status_code == 422
    assert f"at most {BATCH_LIMIT} items" in too_many.text and "reservations" in too_many.text
    assert empty.status_code == 422 and "at least 1 item" in empty.text


async def test_a_body_over_two_mib_gets_413_naming_the_limit(api):
    huge = {"reservations": [{"note": "x" * 1024}] * 2100}
    answer = await api.post("/reservations/batch", json=huge)
    assert answer.status_code == 413
    assert "2 MiB" in answer.text


RESERVATIONS_KEY, OPS_KEY, SCOPED_KEY = "k-res-0123456789", "k-ops-0123456789", "k-res-a-0123456789"


async def test_only_a_reservations_key_may_post_and_a_scoped_one_only_for_its_hotels(env, worker, api_settings: Settings):
    settings = api_settings.model_copy(update={
        "api_keys": f"{RESERVATIONS_KEY}:reservations,{OPS_KEY}:ops,{SCOPED_KEY}:reservations:hotel-a"})
    arrival = await now(env) + timedelta(days=20)
    batch = {"reservations": [item("SCOPED-A", arrival, hotel_id="hotel-a"),
                              item("SCOPED-B", arrival, hotel_id="hotel-b")]}
    async with worker(), remote_client(settings) as client:
        anonymous = await client.post("/reservations/batch", json=batch)
        ops = await client.post("/reservations/batch", json=batch, headers=_bearer(OPS_KEY))
        scoped = await client.post("/reservations/batch", json=batch, headers=_bearer(SCOPED_KEY))
        await end(env, "SCOPED-A")

    assert anonymous.status_code == 401
    assert ops.status_code == 403
    assert scoped.status_code == 200, scoped.text
    assert scoped.json()["started"] == 1
    assert scoped.json()["failures"] == [{
        "line": 2, "reservation_id": "SCOPED-B",
        "error": "hotel_id: your key is limited to hotel-a; it may not use hotel 'hotel-b'"}]


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_without_temporal_every_item_fails_with_why(settings: Settings):
    arrival = datetime.fromisoformat("2030-05-01T15:00:00+00:00")
    async for api in app_client(settings.model_copy(update={"temporal_address": "127.0.0.1:1"})):
        answer = await api.post("/reservations/batch", json={"reservations": [item("NOT-1", arrival)]})
    assert answer.status_code == 200
    assert answer.json()["failures"][0]["error"] == "Temporal is unreachable; try again shortly"

