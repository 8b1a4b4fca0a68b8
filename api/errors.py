"""Domain errors and the one place that turns them, and Temporal's and the
database's failures, into HTTP answers (`{"detail": ...}`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import Match
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.limits import BodyTooLarge
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


def too_large_body(error: HTTPException) -> bool:
    """FastAPI's 400 for a body whose reading `BodySizeLimit` stopped."""
    return isinstance(error.__cause__, BodyTooLarge)


def undecodable_body(error: HTTPException) -> bool:
    """FastAPI's 400 for a JSON body that is not even UTF-8 text."""
    return error.status_code == 400 and isinstance(error.__cause__, UnicodeDecodeError)


CANDIDATE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> str:
    """Every method some route of this path takes (Starlette names only the first route's)."""
    methods = {
        method for method in CANDIDATE_METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
               for route in request.app.router.routes)
    }
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> Response:
        if too_large_body(error):
            raise BodyTooLarge from error  # `BodySizeLimit` answers 413
        if undecodable_body(error):  # malformed JSON, like any other: 422 saying what is wrong
            problem = {"type": "json_invalid", "loc": ["body"], "msg": "the body is not JSON: it is not UTF-8 text"}
            return JSONResponse(status_code=422, content={"detail": [problem]})
        if error.status_code == 405:
            error.headers = {**(error.headers or {}), "Allow": allowed_methods(request)}
        return await http_exception_handler(request, error)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, error: DomainError) -> JSONResponse:
        return JSONResponse(status_code=error.status_code, content={"detail": error.detail})

    @app.exception_handler(RPCError)
    async def _rpc(_: Request, error: RPCError) -> JSONResponse:
        mapped = from_rpc_error(error)
        return JSONResponse(status_code=mapped.status_code, content={"detail": mapped.detail})

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    async def _database(_: Request, error: Exception) -> JSONResponse:
        logger.error("database unavailable", extra={"error": type(error).__name__})
        return JSONResponse(status_code=503, content={"detail": "the database is unavailable; try again shortly"})
