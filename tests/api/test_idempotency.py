"""`Idempotency-Key` on `POST /communications/send` and `PUT /reservations/{id}`:
a repeated request is applied once and gets the first answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import delete, select

from guest_journey.database import SessionFactory, create_engine, session_factory
from guest_journey.idempotent_requests import IdempotentRequest
from guest_journey.schema import upgrade_database
from guest_journey.settings import Settings
from tests.api.test_reservations import reservation_body
from tests.workflows.journeys import end, now


@pytest.fixture
async def app_sessions(api_settings: Settings) -> AsyncIterator[SessionFactory]:
    """The app's own database, to look at the stored keys."""
    engine = create_engine(api_settings.resolved_database_url)
    await upgrade_database(engine)
    yield session_factory(engine)
    await engine.dispose()


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def free_text(rid: str, body: str = "Seu quarto está pronto.") -> dict[str, object]:
    return {"reservation_id": rid, "template": "free_text", "context": {"body": body}}


async def test_a_send_repeated_with_its_key_sends_once_and_gets_the_first_answer(
    env, worker, email, api, app_sessions
):
    rid = "R-IDEM-SEND"
    async with worker():
        await api.put(f"/reservations/{rid}", json=reservation_body(await now(env) + timedelta(days=20)))
        first = await api.post("/communications/send", json=free_text(rid), headers=key("send-1"))
        again = await api.post("/communications/send", json=free_text(rid), headers=key("send-1"))
        # A repeat whose stored answer is gone (say, expired) reaches the journey
        # again: the journey knows the request by its key, and sends nothing more.
        async with app_sessions() as session:
            await session.exec(delete(IdempotentRequest))  # type: ignore[call-overload]
            await session.commit()
        reached_journey = await api.post("/communications/send", json=free_text(rid), headers=key("send-1"))
        other = await api.post("/communications/send", json=free_text(rid), headers=key("send-2"))
        await email.wait_for(2)
        await end(env, rid)
        journey = (await api.get(f"/guest-experience/{rid}")).json()

    assert first.status_code == 202, first.text
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert (reached_journey.status_code, reached_journey.json()) == (202, first.json())
    assert other.status_code == 202 and other.json()["message_id"] != first.json()["message_id"]
    manual = [step for step in journey["steps"] if step["kind"] == "manual"]
    assert [step["message_id"] for step in manual] == [first.json()["message_id"], other.json()["message_id"]]
    assert sorted(m["id"] for m in journey["messages"] if m["template"] == "free_text") == sorted(
        [first.json()["message_id"], other.json()["message_id"]])
    assert email.templates() == ["free_text", "free_text"]


async def test_a_put_repeated_with_its_key_gets_the_first_answer(env, worker, email, api):
    rid = "R-IDEM-PUT"
    body = reservation_body(await now(env) + timedelta(days=20))
    async with worker():
        first = await api.put(f"/reservations/{rid}", json=body, headers=key("put-1"))
        again = await api.put(f"/reservations/{rid}", json=body, headers=key("put-1"))
        without_key = await api.put(f"/reservations/{rid}", json=body)
        await end(env, rid)
    assert first.status_code == 201, first.text
    assert (again.status_code, again.content) == (201, first.content)
    assert without_key.status_code == 200  # an update: the journey had started


async def test_a_key_reused_with_a_different_request_gets_422_naming_the_header(env, worker, email, api):
    rid = "R-IDEM-REUSE"
    body = reservation_body(await now(env) + timedelta(days=20))
    async with worker():
        assert (await api.put(f"/reservations/{rid}", json=body, headers=key("k"))).status_code == 201
        moved = {**body, "room_type": "suite"}
        other_body = await api.put(f"/reservations/{rid}", json=moved, headers=key("k"))
        other_path = await api.put("/reservations/R-IDEM-OTHER", json=body, headers=key("k"))
        # The same JSON written differently is the same request.
        spaced = await api.put(f"/reservations/{rid}", content=json.dumps(body, indent=2),
                               headers={**key("k"), "content-type": "application/json"})

        sent = await api.post("/communications/send", json=free_text(rid), headers=key("s"))
        other_text = await api.post("/communications/send", json=free_text(rid, "Outro texto."), headers=key("s"))
        await end(env, rid)

    for refused in (other_body, other_path, other_text):
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"].startswith("Idempotency-Key: reused with a different request")
    assert spaced.status_code == 201
    assert sent.status_code == 202


async def test_a_repeat_while_the_first_request_runs_gets_409_then_the_first_answer(env, worker, email, api,
                                                                                    app_sessions):
    rid = "R-IDEM-BUSY"
    body = reservation_body(await now(env) + timedelta(days=20))
    first = asyncio.create_task(api.put(f"/reservations/{rid}", json=body, headers=key("busy")))  # no worker yet

    async def claimed() -> None:
        while True:
            async with app_sessions() as session:
                if (await session.exec(select(IdempotentRequest))).first() is not None:
                    return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(claimed(), timeout=20)
    busy = await api.put(f"/reservations/{rid}", json=body, headers=key("busy"))
    async with worker():
        answered = await asyncio.wait_for(first, timeout=30)
        replay = await api.put(f"/reservations/{rid}", json=body, headers=key("busy"))
        await end(env, rid)

    assert busy.status_code == 409
    assert busy.json()["detail"].startswith("Idempotency-Key: a request with this key is still in progress")
    assert 1 <= int(busy.headers["retry-after"]) <= 15
    assert answered.status_code == 201, answered.text
    assert (replay.status_code, replay.content) == (201, answered.content)


async def test_a_request_that_failed_keeps_nothing_and_its_repeat_runs_again(env, worker, email, api):
    rid = "R-IDEM-LATE"
    too_early = await api.post("/communications/send", json=free_text(rid), headers=key("late"))
    async with worker():
        await api.put(f"/reservations/{rid}", json=reservation_body(await now(env) + timedelta(days=20)))
        in_time = await api.post("/communications/send", json=free_text(rid), headers=key("late"))
        await email.wait_for(1)
        await end(env, rid)
    assert too_early.status_code == 404
    assert in_time.status_code == 202, in_time.text
    assert email.templates() == ["free_text"]
