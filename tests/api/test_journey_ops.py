"""Operations over all journeys: volume, preference sync, the task-queue backlog."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle

from guest_journey.journeys import JourneyView, Stage, workflow_id_for
from guest_journey.read_model import save_journey
from guest_journey.reservations import Channel, Guest, Reservation
from guest_journey.settings import Settings
from services.automation import (
    AutomationQueue,
    AutomationUnavailable,
    GuestJourneyBridge,
    automation_queue,
    guest_journey_bridge,
)
from services.journey_volume import journey_volume
from services.snapshot_pending import SnapshotPending, pending_snapshots
from services.task_queue import task_queue_backlog
from tests.api.conftest import app_client
from tests.api.test_reservations import reservation_body
from tests.communications import database_fixtures
from tests.workflows.journeys import booking, end, quiet_policy
from tests.workflows.journeys import now as env_now
from worker import build_worker
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import JourneyInput

T = TypeVar("T")
db_sessions = database_fixtures.db_sessions


@pytest.fixture
async def ops(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in app_client(api_settings):
        yield client


async def eventually(probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 20.0) -> T:
    """`probe()` until `check` holds on its answer; fails after `timeout` seconds."""
    value: T | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = await probe()
                if check(value):
                    return value
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"still {value!r} after {timeout} s")


def rid() -> str:
    return f"OPS-{uuid.uuid4().hex[:10]}"


async def volume(ops: httpx.AsyncClient) -> dict[str, Any]:
    answer = await ops.get("/guest-experience/journey")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def start(ops: httpx.AsyncClient, arrival: Any, count: int) -> list[str]:
    """Start `count` journeys, and wait until each has written its read model."""
    ids = [rid() for _ in range(count)]
    for reservation_id in ids:
        answer = await ops.put(f"/reservations/{reservation_id}", json=reservation_body(arrival))
        assert answer.status_code == 201, answer.text
    await eventually(lambda: volume(ops), lambda v: v["by_stage"]["pre_arrival"] == count)
    return ids


async def test_volume_counts_active_journeys_by_stage(env, worker, ops):
    arrival = await env_now(env) + timedelta(days=20)
    async with worker():
        assert await volume(ops) == {
            "active": 0, "preferences_synced": 0, "pending": 0,
            "by_stage": {stage: 0 for stage in
                         ("pre_arrival", "in_stay", "post_stay", "completed", "cancelled", "no_show")},
        }
        ids = await start(ops, arrival, 3)
        await ops.delete(f"/reservations/{ids[2]}")
        event = await ops.post(f"/reservations/{ids[1]}/events", json={"type": "checked_in"})
        assert event.status_code == 200, event.text
        figures = await eventually(
            lambda: volume(ops), lambda v: v["by_stage"]["cancelled"] == 1 and v["by_stage"]["in_stay"] == 1
        )
        for reservation_id in ids[:2]:
            await end(env, reservation_id)
    assert figures["active"] == 2
    assert figures["by_stage"]["pre_arrival"] == 1 and figures["by_stage"]["in_stay"] == 1
    assert figures["preferences_synced"] == 0 and figures["pending"] == 0


async def test_sync_snapshots_apply_each_and_report_failures_one_by_one(env, worker, ops):
    arrival = await env_now(env) + timedelta(days=20)
    async with worker():
        first, second, cancelled = await start(ops, arrival, 3)
        await ops.delete(f"/reservations/{cancelled}")
        await eventually(lambda: volume(ops), lambda v: v["by_stage"]["cancelled"] == 1)
        event = await ops.post(f"/reservations/{second}/events", json={"type": "checked_in"})
        assert event.status_code == 200, event.text
        await eventually(lambda: volume(ops), lambda v: v["by_stage"]["in_stay"] == 1)
        answer = await ops.post("/guest-experience/journey", json={"mode": "sync", "snapshots": [
            {"reservation_id": first, "preferences": {"pillow": "firm", "floor": "high"}, "nps": 9},
            {"reservation_id": "OPS-UNKNOWN", "preferences": {"pillow": "soft"}},
            {"reservation_id": second, "preferences": {"diet": "vegan"}},
            {"reservation_id": second, "stage": "pre_arrival"},
            {"reservation_id": cancelled, "nps": 3},
        ]})
        journey = (await ops.get(f"/guest-experience/{first}")).json()
        synced = await eventually(lambda: volume(ops), lambda v: v["preferences_synced"] == 2)
        for reservation_id in (first, second):
            await end(env, reservation_id)

    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["accepted"], result["applied"], result["pending"]) == (2, 2, 0)
    assert [error["reservation_id"] for error in result["errors"]] == ["OPS-UNKNOWN", second, cancelled]
    unknown, backwards, finished = (error["detail"] for error in result["errors"])
    assert unknown == "no journey for reservation 'OPS-UNKNOWN'"
    assert backwards == "stage cannot go from in_stay to pre_arrival"
    assert "cancelled" in finished and "takes no more changes" in finished
    assert journey["preferences"] == {"pillow": "firm", "floor": "high"}
    assert journey["feedback"]["status"] == "received" and journey["feedback"]["score"] == 9
    assert synced["pending"] == 0


async def test_async_snapshots_are_pending_until_the_journeys_record_them(dev_env, api_settings, sessions, email):
    """On the dev server: the time-skipping test server can wedge a journey whose workflow
    task completes while an async snapshot's signal arrives ("invalid history builder
    state"), which the real server does not."""
    settings = api_settings.model_copy(update={"temporal_address": dev_env.client.service_client.config.target_host})
    arrival = await env_now(dev_env) + timedelta(days=20)
    async for ops in app_client(settings):
        async with build_worker(dev_env.client, settings, sessions, {Channel.email: email}):
            ids = await start(ops, arrival, 3)
            answer = await ops.post("/guest-experience/journey", json={"mode": "async", "snapshots": [
                {"reservation_id": reservation_id, "preferences": {"late_arrival": True}, "stage": "in_stay"}
                for reservation_id in ids
            ] + [{"reservation_id": "OPS-NOBODY", "nps": 5}]})
            await eventually(partial(volume, ops), lambda v: v["pending"] == 0)
            settled = await volume(ops)
            bridge = GuestJourneyBridge()
            bridge.bind(client=dev_env.client, sessions=sessions)
            bridge_pending = await bridge.pending()
            journeys = [(await ops.get(f"/guest-experience/{reservation_id}")).json() for reservation_id in ids]
            for reservation_id in ids:
                await end(dev_env, reservation_id)

    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["accepted"] == 3 and result["applied"] + result["pending"] == 3
    assert result["errors"] == [{"reservation_id": "OPS-NOBODY", "detail": "no journey for reservation 'OPS-NOBODY'"}]
    assert settled["preferences_synced"] == 3 and settled["by_stage"]["in_stay"] == 3
    assert bridge_pending == 0
    assert all(j["preferences"] == {"late_arrival": True} and j["stage"] == "in_stay" for j in journeys)


async def test_async_snapshots_the_journey_would_ignore_are_refused(env, worker, ops):
    arrival = await env_now(env) + timedelta(days=20)
    async with worker():
        (moving,) = await start(ops, arrival, 1)
        event = await ops.post(f"/reservations/{moving}/events", json={"type": "checked_in"})
        assert event.status_code == 200, event.text
        await eventually(lambda: volume(ops), lambda v: v["by_stage"]["in_stay"] == 1)
        answer = await ops.post("/guest-experience/journey", json={"mode": "async", "snapshots": [
            {"reservation_id": moving, "stage": "pre_arrival"},
        ]})
        await end(env, moving)
    assert answer.json() == {"accepted": 0, "applied": 0, "pending": 0, "errors": [
        {"reservation_id": moving, "detail": "stage cannot go from in_stay to pre_arrival"}]}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"snapshots": [{"reservation_id": "R1", "stage": "on_the_moon"}]}, "stage"),
        ({"snapshots": [{"reservation_id": "R1", "nps": 11}]}, "nps"),
        ({"snapshots": [{"reservation_id": "R1", "nps": 5}], "mode": "later"}, "mode"),
        ({"snapshots": []}, "snapshots"),
        ({"snapshots": [{"reservation_id": "R 1", "nps": 5}]}, "reservation_id"),
        ({"snapshots": [{"reservation_id": "R1", "colour": "blue"}]}, "colour"),
        ({"snapshots": [{"reservation_id": "R1"}]}, "preferences, stage or nps"),
        ({"snapshots": [{"reservation_id": "R1", "preferences": {f"k{n}": n for n in range(101)}}]},
         "preferences"),
    ],
)
async def test_bad_snapshot_requests_get_422_naming_the_field(ops, body, named):
    answer = await ops.post("/guest-experience/journey", json=body)
    assert answer.status_code == 422
    assert named in answer.text


async def test_more_than_500_snapshots_get_413(ops):
    answer = await ops.post("/guest-experience/journey", json={
        "snapshots": [{"reservation_id": f"R{n}", "nps": 5} for n in range(501)]})
    assert answer.status_code == 413
    assert "500" in answer.json()["detail"]


async def test_the_routes_need_the_ops_role(api_settings):
    keyed = api_settings.model_copy(update={"api_keys": "res-key:reservations,ops-key:ops"})
    async for client in app_client(keyed):
        denied = await client.get("/guest-experience/journey", headers={"Authorization": "Bearer res-key"})
        allowed = await client.get("/guest-experience/journey", headers={"Authorization": "Bearer ops-key"})
        anonymous = await client.post("/guest-experience/journey", json={"snapshots": []})
    assert (denied.status_code, allowed.status_code, anonymous.status_code) == (403, 200, 401)


async def test_temporal_unreachable_gets_503(settings):
    async for client in app_client(settings.model_copy(update={"temporal_address": "127.0.0.1:1"})):
        answer = await client.post("/guest-experience/journey", json={
            "snapshots": [{"reservation_id": "R1", "nps": 5}]})
    assert answer.status_code == 503


async def test_unbound_automation_objects_say_so():
    with pytest.raises(AutomationUnavailable, match="bind"):
        await GuestJourneyBridge().pending()
    with pytest.raises(AutomationUnavailable, match="bind"):
        await AutomationQueue().pending()
    assert guest_journey_bridge is not None and automation_queue is not None


async def test_the_time_skipping_server_cannot_tell_the_backlog(env, settings):
    with pytest.raises(AutomationUnavailable, match="does not describe task queues"):
        await task_queue_backlog(client=env.client, settings=settings)


async def test_automation_queue_reports_the_task_queue_backlog_on_the_dev_server(dev_env, settings, sessions, email):
    queue = AutomationQueue()
    queue.bind(client=dev_env.client, settings=settings)
    assert await queue.pending() == 0

    reservation = booking(await env_now(dev_env), arrive_in=timedelta(days=20))
    handle = await asyncio.wait_for(
        _start_without_worker(dev_env.client, settings.task_queue, reservation), timeout=30
    )
    try:
        backlog = await eventually(queue.pending, lambda n: n >= 1, timeout=30)
        async with build_worker(dev_env.client, settings, sessions, {Channel.email: email}):
            drained = await eventually(queue.pending, lambda n: n == 0, timeout=30)
    finally:
        await handle.terminate(reason="test over")
    assert isinstance(backlog, int) and isinstance(drained, int)


async def _start_without_worker(client: Client, task_queue: str, reservation: Reservation) -> WorkflowHandle[Any, Any]:
    """Start a journey that no worker polls for: its first workflow task waits in the queue."""
    return await client.start_workflow(
        GuestJourneyWorkflow.run,
        JourneyInput(reservation=reservation, policy=quiet_policy(), request_id=str(uuid.uuid4())),
        id=workflow_id_for(reservation.reservation_id),
        task_queue=task_queue,
    )


# -- the read-model figures on SQLite and PostgreSQL -----------------------------------


async def test_volume_and_pending_from_the_read_model(db_sessions):
    arrival = datetime(2030, 5, 1, 15, tzinfo=UTC)

    def view(reservation_id: str, stage: Stage, preferences: dict[str, Any], revision: int) -> JourneyView:
        return JourneyView(
            reservation_id=reservation_id, workflow_id=workflow_id_for(reservation_id), hotel_id="hotel-1",
            stage=stage, guest=Guest(name="Ana"), arrival=arrival, departure=arrival + timedelta(days=2),
            preferences=preferences, revision=revision,
        )

    async with db_sessions() as session:
        for record in (
            view("A", Stage.pre_arrival, {"pillow": "firm"}, 3),
            view("B", Stage.in_stay, {}, 5),
            view("C", Stage.in_stay, {"diet": "vegan"}, 2),
            view("D", Stage.completed, {"floor": "high"}, 9),
        ):
            await save_journey(session=session, view=record)
        session.add_all([
            SnapshotPending(reservation_id="A", request_id="s1", seen_revision=3),  # not recorded yet
            SnapshotPending(reservation_id="B", request_id="s2", seen_revision=4),  # recorded since
            SnapshotPending(reservation_id="D", request_id="s3", seen_revision=9),  # finished
            SnapshotPending(reservation_id="E", request_id="s4", seen_revision=-1),  # not in the read model yet
        ])
        await session.commit()
        figures = await journey_volume(session=session)
        pending = await pending_snapshots(session=session)

    assert figures.model_dump() == {
        "active": 3, "preferences_synced": 2, "pending": 2,
        "by_stage": {"pre_arrival": 1, "in_stay": 2, "post_stay": 0, "completed": 1, "cancelled": 0,
                     "no_show": 0},
    }
    assert pending == 2
