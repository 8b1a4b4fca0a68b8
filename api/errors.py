"""The one place that turns domain errors (`services.errors`), and Temporal's and
the database's failures, into HTTP answers (`{"detail": ...}`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from temporalio.service import RPCError

from api.limits import BodyTooLarge
from services.errors import DomainError, from_rpc_error

logger = logging.getLogger(__name__)


def too_large_body(error: HTTPException) -> bool:
    """FastAPI's 400 for a body whose reading `BodySizeLimit` stopped."""
    return isinstance(error.__cause__, BodyTooLarge)


def undecodable_body(error: HTTPException) -> bool:
    """FastAPI's 400 for a JSON body that is not even UTF-8 text."""
    return error.status_code == 400 and isinstance(error.__cause__, UnicodeDecodeError)


CANDIDATE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> str:
    """Every method some route of this path takes (Starlette names only the first route's);
    a path a route names literally (`/reservations/batch`) is that route's alone, not also
    a value of another's parameter (`/reservations/{reservation_id}`)."""
    literal = [route for route in _leaf_routes(request.app.router.routes)
               if "{" not in getattr(route, "path", "{")
               and route.matches({**request.scope, "method": "GET"})[0] is not Match.NONE]
    if literal:
        methods = {method for route in literal for method in (getattr(route, "methods", None) or ())}
    else:
        methods = {
            method for method in CANDIDATE_METHODS
            if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
                   for route in request.app.router.routes)
        }
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def _leaf_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """The app's routes, those of included routers among them."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _leaf_routes(inner.routes)
        else:
            yield route


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
