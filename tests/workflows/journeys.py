"""Starting and driving journeys in workflow tests."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from guest_journey.database import SessionFactory
from guest_journey.journeys import workflow_id_for
from guest_journey.policy import HotelPolicy
from guest_journey.read_model import get_journey
from guest_journey.reservations import Guest, Reservation
from services.journey_service import start_search_attributes
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import CancelRequest, JourneyAck, JourneyInput, ReservationUpdate
from workflows.patches import CURRENT_SHAPE

SAO_PAULO = "America/Sao_Paulo"


def quiet_policy(**overrides: Any) -> HotelPolicy:
    """The default policy without quiet hours, so moments in tests are exact."""
    return HotelPolicy(quiet_hours=None, **overrides)


def booking(now: datetime, *, arrive_in: timedelta, nights: int = 2, **guest: Any) -> Reservation:
    arrival = now + arrive_in
    return Reservation(
        reservation_id=f"R{uuid.uuid4().hex[:10]}",
        hotel_id="hotel-1",
        guest=Guest(
            name=guest.pop("name", "Ana Souza"),
            email=guest.pop("email", "ana@example.com"),
            language=guest.pop("language", "pt-BR"),
            marketing_consent=guest.pop("marketing_consent", True),
            **guest,
        ),
        arrival=arrival,
        departure=arrival + timedelta(days=nights),
    )


async def put(
    client: Client,
    task_queue: str,
    reservation: Reservation,
    policy: HotelPolicy,
    *,
    continue_as_new_after_events: int = 10_000,
    request_id: str | None = None,
    shape: int = CURRENT_SHAPE,
) -> tuple[WorkflowHandle[Any, Any], JourneyAck]:
    """Start or update a journey the way the API does (update-with-start)."""
    request_id = request_id or str(uuid.uuid4())
    start = WithStartWorkflowOperation(
        GuestJourneyWorkflow.run,
        JourneyInput(
            reservation=reservation,
            policy=policy,
            request_id=request_id,
            continue_as_new_after_events=continue_as_new_after_events,
            shape=shape,
        ),
        id=workflow_id_for(reservation.reservation_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=start_search_attributes(reservation),
    )
    ack = await client.execute_update_with_start_workflow(
        GuestJourneyWorkflow.update_reservation,
        ReservationUpdate(reservation=reservation, policy=policy, request_id=request_id),
        start_workflow_operation=start,
    )
    handle = client.get_workflow_handle_for(GuestJourneyWorkflow.run, workflow_id_for(reservation.reservation_id))
    return handle, ack


async def now(env: WorkflowEnvironment) -> datetime:
    return await env.get_current_time()


async def finish(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]) -> Any:
    """The journey's result, letting the time-skipping server skip to it.

    Handles from update-with-start are not the environment's own, so time
    skipping is unlocked here as `env.client.start_workflow` handles do it.
    """
    unlocked = getattr(env, "time_skipping_unlocked", None)
    if unlocked is None:
        return await handle.result()
    async with unlocked():
        return await _result(handle)


async def _result(handle: WorkflowHandle[Any, Any], attempts: int = 5) -> Any:
    """The result, waiting again when the server's long poll ends before the journey
    does (a loaded machine skips a long stay more slowly than one poll lasts)."""
    for attempt in range(attempts):
        try:
            return await handle.result()
        except RuntimeError as error:
            if "No completion event found" not in str(error) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


async def end(env: WorkflowEnvironment, reservation_id: str) -> Any:
    """Cancel a journey and wait for it to finish, so that no test leaves a
    journey behind whose pending work would hold the shared test server's clock."""
    handle = env.client.get_workflow_handle_for(GuestJourneyWorkflow.run, workflow_id_for(reservation_id))
    await handle.execute_update(GuestJourneyWorkflow.cancel, CancelRequest(request_id=f"end-{uuid.uuid4()}"))
    return await finish(env, handle)


async def recorded(sessions: SessionFactory, reservation_id: str, timeout: float = 30.0) -> None:
    """Wait until the journey is in the read model."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        async with sessions() as session:
            if await get_journey(session=session, reservation_id=reservation_id) is not None:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the journey of {reservation_id} was not recorded within {timeout} s")
