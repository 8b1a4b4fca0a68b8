"""How the API talks to journeys: start-or-update, updates, and reads.

Routes stay thin; every Temporal call goes through here, inside
`temporal_errors`, so the answers for a missing journey, a finished one or an
unreachable Temporal are the same everywhere.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
)
from temporalio.common import TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from communications.message_store import MessageRecord
from guest_journey import read_model
from guest_journey.database import SessionFactory
from guest_journey.journeys import JourneyView, Stage, workflow_id_for
from guest_journey.messages import MessageDirection, MessageStatus
from guest_journey.policy import JourneyPolicy
from guest_journey.reservations import Channel, Reservation, ReservationIn
from guest_journey.settings import Settings
from guest_journey.temporal import journey_search_attributes
from services.errors import Conflict, NotFound, Unavailable, temporal_errors
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import (
    InboundNotice,
    JourneyAck,
    JourneyInput,
    MessageFailedLater,
    ReservationUpdate,
    SendAgainRequest,
)
from workflows.patches import CURRENT_SHAPE

logger = logging.getLogger(__name__)
QUERY_TIMEOUT = timedelta(seconds=5)


class NotInDoubt(Conflict):
    """409: only a message in doubt is sent again; `status` is the message's."""

    def __init__(self, detail: str, status: str) -> None:
        super().__init__(detail)
        self.status = status


def journey_handle(client: Client, reservation_id: str) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle_for(GuestJourneyWorkflow.run, workflow_id_for(reservation_id))


async def put_reservation(
    *,
    client: Client,
    settings: Settings,
    session: AsyncSession,
    policy: JourneyPolicy,
    reservation: Reservation,
    request_id: str,
) -> JourneyAck:
    """Start the journey, or update it; a finished journey takes no update (409)."""
    rid = reservation.reservation_id
    finished = await read_model.finished_stage(session=session, reservation_id=rid)
    if finished is not None:
        raise Conflict(f"the journey of reservation {rid!r} is {finished.value}; it takes no more changes")
    hotel_policy = policy.for_hotel(reservation.hotel_id)
    start = WithStartWorkflowOperation(
        GuestJourneyWorkflow.run,
        JourneyInput(reservation=reservation, policy=hotel_policy, request_id=request_id, shape=CURRENT_SHAPE),
        id=workflow_id_for(rid),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=start_search_attributes(reservation),
    )
    update = ReservationUpdate(reservation=reservation, policy=hotel_policy, request_id=request_id)
    with temporal_errors(rid):
        try:
            return await client.execute_update_with_start_workflow(
                GuestJourneyWorkflow.update_reservation, update, start_workflow_operation=start
            )
        except WorkflowAlreadyStartedError as error:
            raise Conflict(f"the journey of reservation {rid!r} has finished; it takes no more changes") from error


def start_search_attributes(reservation: Reservation) -> TypedSearchAttributes:
    """The search attributes a new journey starts with: its first workflow task then
    upserts none (the journey checks they match its state)."""
    return journey_search_attributes(
        reservation_id=reservation.reservation_id,
        hotel_id=reservation.hotel_id,
        stage=Stage.pre_arrival.value,
        arrival=reservation.arrival,
    )


async def read_journey(
    *, client: Client, session: AsyncSession, reservation_id: str, consistent: bool = True
) -> JourneyView:
    """The journey as it is now: the workflow's own state while it runs, the read
    model once it has finished (or when Temporal cannot answer in time).

    With `consistent=False` the read model answers whenever it holds the journey:
    a journey answers an update only once the read model holds its change
    (`GuestJourneyWorkflow._answered`), so the row is current for every change
    acknowledged to a caller; what the journey does on its own (a step sent, a
    signal) shows there once it is recorded, in the same workflow task."""
    stored = await read_model.get_journey(session=session, reservation_id=reservation_id)
    if stored is not None and (stored.stage.is_final or not consistent):
        return stored
    try:
        with temporal_errors(reservation_id):
            return await journey_handle(client, reservation_id).query(
                GuestJourneyWorkflow.state, rpc_timeout=QUERY_TIMEOUT
            )
    except (NotFound, Unavailable):
        if stored is None:
            raise
        logger.warning("journey answered from the read model: Temporal did not",
                       extra={"reservation_id": reservation_id})
        return stored


async def update_journey(
    *, client: Client, session: AsyncSession, reservation_id: str, update: Any, argument: Any
) -> JourneyAck:
    """Send one update to a running journey; 404 unknown, 409 finished."""
    try:
        with temporal_errors(reservation_id):
            ack: JourneyAck = await journey_handle(client, reservation_id).execute_update(update, argument)
            return ack
    except NotFound:
        finished = await read_model.finished_stage(session=session, reservation_id=reservation_id)
        if finished is not None:
            raise Conflict(
                f"the journey of reservation {reservation_id!r} is {finished.value}; it takes no more changes"
            ) from None
        raise


async def send_again(
    *, client: Client, session: AsyncSession, reservation_id: str, step_key: str, request_id: str
) -> JourneyAck:
    """Send a step whose message is in doubt again, once, on the same channel and with the
    same message id (`GuestJourneyWorkflow.send_again`): 404 unknown journey, 409 finished,
    422 the step is not in doubt or is being sent again already (the journey says which)."""
    ack: JourneyAck = await update_journey(
        client=client, session=session, reservation_id=reservation_id,
        update=GuestJourneyWorkflow.send_again,
        argument=SendAgainRequest(request_id=request_id, step_key=step_key),
    )
    return ack


async def send_message_again(
    *, client: Client, session: AsyncSession, message_id: str, request_id: str, reservation_id: str | None = None
) -> MessageRecord:
    """`send_again` for the step of an outbound message in doubt; the message. 404 an unknown
    message (or one of another reservation than `reservation_id`), 409 one not in doubt."""
    message = await session.get(MessageRecord, message_id)
    if message is None or (reservation_id is not None and message.reservation_id != reservation_id):
        raise NotFound(f"no message {message_id!r}")
    if message.direction != MessageDirection.outbound.value:
        raise NotInDoubt(f"message {message_id!r} is from the guest; only our messages are sent again",
                         message.status)
    if message.status != MessageStatus.in_doubt.value:
        raise NotInDoubt(
            f"message {message_id!r} is {message.status}, not in_doubt: only a message in doubt is sent again",
            message.status,
        )
    if message.reservation_id is None or message.step_key is None:
        raise NotInDoubt(f"message {message_id!r} is no step of a journey; send a new message instead",
                         message.status)
    await send_again(client=client, session=session, reservation_id=message.reservation_id,
                     step_key=message.step_key, request_id=request_id)
    return message


async def notify_inbound(*, client: Client, message: MessageRecord) -> None:
    """Signal the journey that its guest wrote; the message is stored already, so a
    finished journey or an unreachable Temporal only costs the signal (logged)."""
    assert message.reservation_id is not None
    notice = InboundNotice(
        message_id=message.id,
        channel=Channel(message.channel),
        received_at=message.created_at,
        in_reply_to=message.in_reply_to,
    )
    try:
        with temporal_errors(message.reservation_id):
            await journey_handle(client, message.reservation_id).signal(GuestJourneyWorkflow.record_inbound, notice)
    except (NotFound, Unavailable) as error:
        logger.warning("inbound message not signalled to its journey: %s", error.detail,
                       extra={"reservation_id": message.reservation_id, "message_id": message.id})


async def notify_failed_later(
    *, client: Client, message: MessageRecord, error_code: int | None, reason: str | None, at: datetime
) -> None:
    """Tell a running journey that a message of one of its steps failed after its channel
    accepted it (the journey decides whether to send it again). A finished journey only
    costs the signal (logged); an unreachable Temporal is a 503, so the channel redelivers."""
    if message.reservation_id is None or message.step_key is None:
        return
    failure = MessageFailedLater(
        message_id=message.id,
        step_key=message.step_key,
        channel=Channel(message.channel),
        error_code=error_code,
        reason=reason,
        failed_at=at,
    )
    try:
        with temporal_errors(message.reservation_id):
            await journey_handle(client, message.reservation_id).signal(
                GuestJourneyWorkflow.message_failed_later, failure
            )
    except NotFound as error:
        logger.warning("late message failure not signalled to its journey: %s", error.detail,
                       extra={"reservation_id": message.reservation_id, "message_id": message.id})


async def start_journey(
    *,
    client: Client,
    settings: Settings,
    sessions: SessionFactory,
    policy: JourneyPolicy,
    reservation: Reservation,
    request_id: str,
) -> JourneyAck:
    """Bulk onboarding's start (`services.reservation_import`): the PUT's rules, but a new
    journey is only started (`start_workflow`, its search attributes given at start), not
    waited for; a journey that exists already takes the PUT's update, whose answer says
    whether it changed (a journey just started is created and changed; one this very request
    started earlier, created and not changed). A finished journey takes nothing (409), as
    for the PUT; one whose read model already holds this very reservation is left alone
    (answered unchanged, the journey not even woken: a re-run of an import). The database
    is read in sessions of its own, held by no Temporal call, so
    that many starts at a time need few connections."""
    rid = reservation.reservation_id
    async with sessions() as session:
        stored = await read_model.get_journey(session=session, reservation_id=rid)
    if stored is not None and stored.stage.is_final:
        raise Conflict(f"the journey of reservation {rid!r} is {stored.stage.value}; it takes no more changes")
    if stored is not None and recorded_as(stored, reservation):
        return JourneyAck(reservation_id=rid, workflow_id=stored.workflow_id, stage=stored.stage)
    hotel_policy = policy.for_hotel(reservation.hotel_id)
    try:
        with temporal_errors(rid):
            await client.start_workflow(
                GuestJourneyWorkflow.run,
                JourneyInput(reservation=reservation, policy=hotel_policy, request_id=request_id, shape=CURRENT_SHAPE),
                id=workflow_id_for(rid),
                task_queue=settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=start_search_attributes(reservation),
            )
        return JourneyAck(reservation_id=rid, workflow_id=workflow_id_for(rid), stage=Stage.pre_arrival,
                          created=True, changed=True)
    except WorkflowAlreadyStartedError:
        pass
    async with sessions() as session:
        return await update_journey(
            client=client, session=session, reservation_id=rid, update=GuestJourneyWorkflow.update_reservation,
            argument=ReservationUpdate(reservation=reservation, policy=hotel_policy, request_id=request_id),
        )


def recorded_as(stored: JourneyView, reservation: Reservation) -> bool:
    """The read model's journey holds this reservation as it is."""
    fields = set(ReservationIn.model_fields)  # what a PUT sends
    return stored.model_dump(mode="json", include=fields) == reservation.model_dump(mode="json", include=fields)
