"""Preference sync: snapshots (preferences, stage, NPS) pushed into running
journeys, as `POST /guest-experience/journey` does.

- sync mode sends each snapshot as the workflow's `apply_snapshot` update and
  answers once every one is applied or has failed, failures one by one;
- async mode sends the `apply_snapshot_async` signal and remembers each
  snapshot in `snapshot_pending` (`services.snapshot_pending`), pending until
  the journey's read model is written again or the journey has finished.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from guest_journey import read_model
from guest_journey.journeys import Stage, may_move, workflow_id_for
from guest_journey.read_model import JourneyRecord
from guest_journey.reservations import HOTEL_ID_PATTERN, RESERVATION_ID
from services.snapshot_pending import SnapshotPending, forget_settled, settled
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import JourneySnapshot

MAX_SNAPSHOTS = 500
MAX_PREFERENCES = 100
CONCURRENCY = 16
NO_ANSWER = "the journey did not answer in time; the snapshot may still be applied: send it again"


# -- the sync contract (CONTRACT §2) ----------------------------------------------------


class SnapshotMode(StrEnum):
    sync = "sync"
    async_ = "async"


class GuestJourneySnapshot(BaseModel):
    """What the preference sync knows of one journey; at least one of preferences, stage, nps."""

    # The schema says "at least one of" too (`anyOf`), so that a client and a fuzzer can know it.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["preferences"], "properties": {"preferences": {"type": "object"}}},
        {"required": ["stage"], "properties": {"stage": {"type": "string"}}},
        {"required": ["nps"], "properties": {"nps": {"type": "integer"}}},
    ]})

    reservation_id: str = Field(pattern=RESERVATION_ID)
    hotel_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=HOTEL_ID_PATTERN,
        description="the reservation's hotel, with GUEST_JOURNEY_WORKFLOW_ID_SCOPE=hotel when several hotels "
        "use the same reservation id (otherwise not needed)",
    )
    preferences: dict[str, Any] | None = Field(default=None, json_schema_extra={"maxProperties": MAX_PREFERENCES})
    stage: Stage | None = None
    nps: int | None = Field(default=None, ge=0, le=10, strict=True)  # false is not a score

    @field_validator("nps", mode="before")
    @classmethod
    def _whole_number(cls, value: object) -> object:
        """JSON Schema's integer: 7.0 is 7 (false, "7" and 7.5 stay refused)."""
        return int(value) if isinstance(value, float) and value.is_integer() else value

    @field_validator("preferences")
    @classmethod
    def _few_preferences(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(value) > MAX_PREFERENCES:
            raise ValueError(f"at most {MAX_PREFERENCES} preferences per snapshot")
        return value

    @model_validator(mode="after")
    def _says_something(self) -> GuestJourneySnapshot:
        if self.preferences is None and self.stage is None and self.nps is None:
            raise ValueError("a snapshot needs preferences, stage or nps")
        return self

    def to_workflow(self) -> JourneySnapshot:
        return JourneySnapshot(
            request_id=f"snapshot-{uuid.uuid4()}", preferences=self.preferences, stage=self.stage, nps=self.nps
        )


class GuestJourneySnapshotRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    snapshots: list[GuestJourneySnapshot] = Field(
        min_length=1, json_schema_extra={"maxItems": MAX_SNAPSHOTS},
        description=f"at most {MAX_SNAPSHOTS}; snapshots of one reservation are applied in order",
    )
    mode: SnapshotMode = SnapshotMode.sync


class SnapshotError(BaseModel):
    reservation_id: str
    detail: str


class SnapshotResult(BaseModel):
    """`accepted`: snapshots a journey took (or, async, was sent); `applied`: those
    already applied; `pending`: accepted ones not applied yet (always 0 in sync mode)."""

    accepted: int = 0
    applied: int = 0
    pending: int = 0
    errors: list[SnapshotError] = Field(default_factory=list)


# -- applying snapshots ------------------------------------------------------------------


def _finished(reservation_id: str, stage: Stage) -> str:
    return f"the journey of reservation {reservation_id!r} is {stage.value}; it takes no more changes"


def _unknown(reservation_id: str) -> str:
    return f"no journey for reservation {reservation_id!r}"


async def _per_reservation(
    snapshots: Sequence[GuestJourneySnapshot],
    apply: Callable[[int, GuestJourneySnapshot], Awaitable[None]],
) -> None:
    """`apply(position, snapshot)` for every snapshot, those of one reservation in
    order, at most CONCURRENCY at once.

    A failure `apply` does not handle (Temporal unreachable) stops the batch and is raised.
    """
    by_reservation: dict[str, list[tuple[int, GuestJourneySnapshot]]] = defaultdict(list)
    for position, snapshot in enumerate(snapshots):
        by_reservation[snapshot.reservation_id].append((position, snapshot))
    limit = asyncio.Semaphore(CONCURRENCY)

    async def run(group: list[tuple[int, GuestJourneySnapshot]]) -> None:
        async with limit:
            for position, snapshot in group:
                await apply(position, snapshot)

    try:
        async with asyncio.TaskGroup() as tasks:
            for group in by_reservation.values():
                tasks.create_task(run(group))
    except ExceptionGroup as failures:
        raise failures.exceptions[0] from None


async def _explain_not_found(session: AsyncSession, reservation_ids: list[str]) -> list[SnapshotError]:
    errors = []
    for reservation_id in reservation_ids:
        stage = await read_model.finished_stage(session=session, reservation_id=reservation_id)
        detail = _finished(reservation_id, stage) if stage is not None else _unknown(reservation_id)
        errors.append(SnapshotError(reservation_id=reservation_id, detail=detail))
    return errors


async def apply_snapshots(
    *, client: Client, session: AsyncSession, snapshots: Sequence[GuestJourneySnapshot]
) -> SnapshotResult:
    """Sync mode: each snapshot as the `apply_snapshot` update; failures reported one by one.

    Temporal errors other than a missing journey or a rejected update are raised.
    """
    result = SnapshotResult()
    failures: dict[int, SnapshotError] = {}
    not_found: dict[int, str] = {}

    async def apply(position: int, snapshot: GuestJourneySnapshot) -> None:
        workflow_snapshot = snapshot.to_workflow()
        handle = client.get_workflow_handle_for(GuestJourneyWorkflow.run, workflow_id_for(snapshot.reservation_id))
        try:
            await handle.execute_update(
                GuestJourneyWorkflow.apply_snapshot, workflow_snapshot, id=workflow_snapshot.request_id
            )
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            detail = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
            failures[position] = SnapshotError(reservation_id=snapshot.reservation_id, detail=detail)
            return
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            failures[position] = SnapshotError(reservation_id=snapshot.reservation_id, detail=NO_ANSWER)
            return
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            not_found[position] = snapshot.reservation_id
            return
        result.accepted += 1
        result.applied += 1

    await _per_reservation(snapshots, apply)
    failures.update(zip(not_found, await _explain_not_found(session, list(not_found.values())), strict=True))
    result.errors = [failures[position] for position in sorted(failures)]
    return result


async def send_snapshots(
    *, client: Client, session: AsyncSession, snapshots: Sequence[GuestJourneySnapshot]
) -> SnapshotResult:
    """Async mode: each snapshot as the `apply_snapshot_async` signal, remembered as pending.

    A snapshot the journey would ignore (finished journey, stage moving back,
    as the read model shows it) is reported in `errors` and not sent.
    """
    ids = sorted({snapshot.reservation_id for snapshot in snapshots})
    rows = await session.exec(
        select(JourneyRecord.reservation_id, JourneyRecord.stage, JourneyRecord.revision)
        .where(col(JourneyRecord.reservation_id).in_(ids))
    )
    known = {reservation_id: (Stage(stage), revision) for reservation_id, stage, revision in rows.all()}
    failures: dict[int, SnapshotError] = {}
    not_found: dict[int, str] = {}
    sent: list[SnapshotPending] = []

    async def send(position: int, snapshot: GuestJourneySnapshot) -> None:
        rid = snapshot.reservation_id
        stage, revision = known.get(rid, (None, -1))
        if stage is not None and stage.is_final:
            failures[position] = SnapshotError(reservation_id=rid, detail=_finished(rid, stage))
            return
        if stage is not None and snapshot.stage is not None and not may_move(stage, snapshot.stage):
            detail = f"stage cannot go from {stage.value} to {snapshot.stage.value}"
            failures[position] = SnapshotError(reservation_id=rid, detail=detail)
            return
        workflow_snapshot = snapshot.to_workflow()
        handle = client.get_workflow_handle_for(GuestJourneyWorkflow.run, workflow_id_for(rid))
        try:
            await handle.signal(GuestJourneyWorkflow.apply_snapshot_async, workflow_snapshot)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            not_found[position] = rid
            return
        sent.append(SnapshotPending(reservation_id=rid, request_id=workflow_snapshot.request_id,
                                    seen_revision=revision))
        if stage is not None and snapshot.stage is not None:
            known[rid] = (snapshot.stage, revision)

    try:
        await _per_reservation(snapshots, send)
    finally:
        # What was sent is pending even when the batch stopped half-way.
        session.add_all(sent)
        await session.commit()
    failures.update(zip(not_found, await _explain_not_found(session, list(not_found.values())), strict=True))
    await forget_settled(session)
    still = await session.exec(
        select(func.count()).select_from(SnapshotPending)
        .where(col(SnapshotPending.request_id).in_([row.request_id for row in sent]), ~settled())
    )
    pending = int(still.one()) if sent else 0
    return SnapshotResult(
        accepted=len(sent),
        applied=len(sent) - pending,
        pending=pending,
        errors=[failures[position] for position in sorted(failures)],
    )
