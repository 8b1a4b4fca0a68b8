"""`guest-journey gdpr export|erase RESERVATION_ID`: a guest's personal data on request.

`export` prints every row of the reservation's guest as JSON (or writes it to
`--output`, readable by its owner only). `erase` first ends a journey that is
still running, the way `DELETE /reservations/{id}` cancels it, and waits until
it has finished, so the workflow sends nothing more and writes nothing back;
then it replaces the personal fields in the database and destroys the
journey's data keys, so its Temporal history cannot be decoded any more
(`services.gdpr`). Its client has the payload codec, as the worker's does.
Both are recorded in the `gdpr_audit` table with `--actor` and `--reason`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)

from guest_journey import read_model
from guest_journey.database import SessionFactory, create_engine, session_factory
from guest_journey.journey_ids import AmbiguousReservation, JourneyIdTooLong, find_journey_id
from guest_journey.schema import SchemaNotCurrent, prepare_database
from guest_journey.settings import Settings
from guest_journey.temporal import connect_temporal
from services.gdpr import (
    UnknownReservation,
    erase_guest_data,
    export_guest_data,
    has_guest_data,
)

FAILED = 1
CONNECT_TIMEOUT_SECONDS = 10.0
END_TIMEOUT_SECONDS = 60.0
DESCRIBE_TIMEOUT = timedelta(seconds=10)
TEMPORAL_RETENTION_NOTE = (
    "Temporal keeps the journey's history until the namespace's retention period ends, but its "
    "payloads were encrypted under the journey's data keys, now destroyed: they cannot be decoded "
    "(see 'Personal data' in docs/deploy.md)."
)


class JourneyNotEnded(RuntimeError):
    """The journey could not be ended, so erasing now could be undone by the workflow."""


def add_parser(commands: Any) -> None:
    """Add `gdpr export` and `gdpr erase` to the CLI's subcommands."""
    gdpr = commands.add_parser(
        "gdpr", help="export or erase a guest's personal data",
        description="Export or erase the personal data of a reservation's guest; every run is audited.",
    )
    actions = gdpr.add_subparsers(dest="gdpr_action", required=True, metavar="{export,erase}")
    export = actions.add_parser("export", help="print the guest's data as JSON",
                                description="Print every stored row of the reservation's guest as JSON.")
    export.add_argument("--output", type=Path, help="write the JSON to this file (mode 0600) instead of stdout")
    erase = actions.add_parser(
        "erase", help="end the journey and erase the guest's data",
        description="End the reservation's journey if it runs, then replace the guest's personal data "
        "with a marker; rows and figures (delivery, NPS, upsells) stay.",
    )
    erase.add_argument("--force", action="store_true",
                       help="erase the database even when the journey could not be ended")
    for action in (export, erase):
        action.add_argument("reservation_id", metavar="RESERVATION_ID")
        action.add_argument("--hotel", metavar="HOTEL_ID",
                            help="the reservation's hotel, with GUEST_JOURNEY_WORKFLOW_ID_SCOPE=hotel when several "
                            "hotels use the same reservation id")
        action.add_argument("--actor", default=_os_user(), help="who asks, for the audit trail (default: the OS user)")
        action.add_argument("--reason", help="why, for the audit trail (e.g. the request's ticket)")
    gdpr.set_defaults(run_with_args=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    command = _export_command if args.gdpr_action == "export" else _erase_command
    try:
        return asyncio.run(command(settings, args))
    except SchemaNotCurrent as error:
        return _fail(str(error))


async def _named_journey(settings: Settings, sessions: SessionFactory, args: argparse.Namespace) -> str:
    """The journey the command names (`guest_journey.journey_ids`): with hotel scope, by its
    id, or by the hotel's reservation id and `--hotel` (needed when several hotels use it)."""
    async with sessions() as session:
        return await find_journey_id(session=session, scope=settings.workflow_id_scope,
                                     reservation_id=args.reservation_id, hotel_id=args.hotel)


async def _export_command(settings: Settings, args: argparse.Namespace) -> int:
    async with _database(settings) as sessions:
        try:
            args.reservation_id = await _named_journey(settings, sessions, args)
        except (AmbiguousReservation, JourneyIdTooLong) as error:
            return _fail(str(error))
        if not await has_guest_data(sessions, args.reservation_id):
            return _fail(str(UnknownReservation(args.reservation_id)))
        try:
            output = _open_private(args.output) if args.output else sys.stdout
        except OSError as error:
            return _fail(f"cannot write {args.output}: {error.strerror}")
        data = await export_guest_data(sessions, args.reservation_id, actor=args.actor, reason=args.reason)
    output.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    if output is not sys.stdout:
        output.close()
        _say(f"exported the data of reservation {args.reservation_id!r} to {args.output}")
    return 0


async def _erase_command(settings: Settings, args: argparse.Namespace) -> int:
    async with _database(settings) as sessions:
        try:
            reservation_id = await _named_journey(settings, sessions, args)
        except (AmbiguousReservation, JourneyIdTooLong) as error:
            return _fail(str(error))
        if not await has_guest_data(sessions, reservation_id):
            return _fail(str(UnknownReservation(reservation_id)))
        try:
            ended = await _end_journey_before_erasing(settings, sessions, reservation_id)
        except JourneyNotEnded as error:
            if not args.force:
                return _fail(f"{error}; nothing was erased. Fix that and run it again, or use --force "
                             "to erase the database anyway")
            ended = f"warning: {error}; erasing the database anyway (--force)"
        counts = await erase_guest_data(
            sessions, reservation_id, secret_key=settings.resolved_secret_key(), actor=args.actor, reason=args.reason,
            outbox_dir=settings.outbox_dir,
        )
    if ended:
        _say(ended)
    touched = ", ".join(f"{table} {count}" for table, count in counts.items())
    _say(f"erased the personal data of reservation {reservation_id!r} (rows changed: {touched})")
    _say(TEMPORAL_RETENTION_NOTE)
    return 0


async def _end_journey_before_erasing(settings: Settings, sessions: SessionFactory, reservation_id: str) -> str | None:
    client = await _reach_temporal(settings, sessions)
    if client is not None:
        return await end_journey(client, sessions, reservation_id)
    unreachable = f"Temporal at {settings.temporal_address} is unreachable"
    async with sessions() as session:
        stored = await read_model.get_journey(session=session, reservation_id=reservation_id)
    if stored is not None and not stored.stage.is_final:
        raise JourneyNotEnded(
            f"{unreachable} and the journey of reservation {reservation_id!r} is still {stored.stage.value}: "
            "it would go on and write the guest's data back"
        )
    return f"{unreachable}; the journey had finished already, so nothing needed ending"


async def end_journey(
    client: Client, sessions: SessionFactory, reservation_id: str, *, timeout: float = END_TIMEOUT_SECONDS
) -> str | None:
    """End the reservation's journey if it is running, as `DELETE /reservations/{id}`
    cancels it, and wait until the workflow has finished (its last read-model write
    done); answers what was done, None when no journey was running.

    Raises `JourneyNotEnded` when Temporal cannot be reached or the journey does
    not finish within `timeout` seconds (no worker running)."""
    from services.errors import Conflict, NotFound, Unavailable, temporal_errors
    from services.journey_service import journey_handle, update_journey
    from workflows.journey import GuestJourneyWorkflow
    from workflows.journey_inputs import CancelRequest

    handle = journey_handle(client, reservation_id)
    try:
        with temporal_errors(reservation_id):
            description = await handle.describe(rpc_timeout=DESCRIBE_TIMEOUT)
        if description.status != WorkflowExecutionStatus.RUNNING:
            return None
        async with sessions() as session:
            await asyncio.wait_for(
                update_journey(
                    client=client, session=session, reservation_id=reservation_id,
                    update=GuestJourneyWorkflow.cancel,
                    argument=CancelRequest(request_id=f"gdpr-erase-{uuid.uuid4()}"),
                ),
                timeout,
            )
        with temporal_errors(reservation_id):
            await asyncio.wait_for(handle.result(), timeout)
    except (Conflict, NotFound):  # it finished on its own meanwhile
        return None
    except WorkflowFailureError:  # failed or terminated: it writes nothing more either
        return None
    except Unavailable as error:
        raise JourneyNotEnded(f"the journey of reservation {reservation_id!r} was not ended: {error.detail}") from error
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as error:  # cancelled on timeout
        raise JourneyNotEnded(
            f"the journey of reservation {reservation_id!r} did not end within {timeout:.0f} s "
            "(is a worker running?)"
        ) from error
    return (f"cancelled the running journey of reservation {reservation_id!r} first, "
            "so it sends nothing more and does not write the guest's data back")


async def _reach_temporal(settings: Settings, sessions: SessionFactory) -> Client | None:
    try:
        return await asyncio.wait_for(connect_temporal(settings, sessions=sessions), CONNECT_TIMEOUT_SECONDS)
    except (RuntimeError, TimeoutError):
        return None


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[SessionFactory]:
    engine = create_engine(settings.resolved_database_url)
    try:
        await prepare_database(engine, settings)
        yield session_factory(engine)
    finally:
        await engine.dispose()


def _open_private(path: Path) -> TextIO:
    """The file, created or emptied, readable and writable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "w", encoding="utf-8")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _say(message: str) -> None:
    sys.stdout.write(f"{message}\n")


def _fail(message: str) -> int:
    sys.stderr.write(f"guest-journey gdpr: {message}\n")
    return FAILED
