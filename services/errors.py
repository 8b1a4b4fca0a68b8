"""The errors an operation reports (not found, conflict, invalid, unavailable),
and the one mapping from Temporal's failures to them. `api.errors` turns them
into HTTP answers; commands print them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from workflows.journey_inputs import INVALID_REQUEST, JOURNEY_FINISHED, OFFER_NOT_OFFERED

logger = logging.getLogger(__name__)


class DomainError(Exception):
    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class OfferNotOffered(Conflict):
    """409: an answer to an offer the journey has not offered to this guest."""


class InvalidRequest(DomainError):
    status_code = 422


class Unavailable(DomainError):
    status_code = 503


def journey_not_found(reservation_id: str) -> NotFound:
    return NotFound(f"no journey for reservation {reservation_id!r}")


def from_update_failure(error: WorkflowUpdateFailedError) -> DomainError:
    cause = error.cause
    if isinstance(cause, ApplicationError):
        if cause.type == JOURNEY_FINISHED:
            return Conflict(cause.message)
        if cause.type == INVALID_REQUEST:
            return InvalidRequest(cause.message)
        if cause.type == OFFER_NOT_OFFERED:
            return OfferNotOffered(cause.message)
        return Conflict(cause.message)
    return Conflict(str(cause or error))


def from_rpc_error(error: RPCError, reservation_id: str | None = None) -> DomainError:
    if error.status == RPCStatusCode.NOT_FOUND and reservation_id is not None:
        return journey_not_found(reservation_id)
    if error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
        return Unavailable("Temporal is unreachable; try again shortly")
    if error.status == RPCStatusCode.ALREADY_EXISTS:
        return Conflict(error.message)
    logger.error("temporal call failed", extra={"status": error.status.name, "detail": error.message})
    return Unavailable(f"Temporal answered {error.status.name}: {error.message}")


@contextmanager
def temporal_errors(reservation_id: str | None = None) -> Iterator[None]:
    """Turn what Temporal raises into the domain errors the API answers with."""
    try:
        yield
    except WorkflowUpdateFailedError as error:
        raise from_update_failure(error) from error
    except RPCError as error:
        raise from_rpc_error(error, reservation_id) from error
    except RuntimeError as error:
        if "client connect" in str(error):
            raise Unavailable("Temporal is unreachable; try again shortly") from error
        raise
