"""The error answers each route declares in its OpenAPI `responses=`, so that the
schema names every status a caller may get, with its body (`{"detail": ...}`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorOut(BaseModel):
    """An error: `detail` says what is wrong."""

    detail: str


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class InvalidInputOut(BaseModel):
    """422: the invalid fields, each with its location, or one sentence naming the field."""

    detail: list[FieldProblem] | str


WHY: dict[int, str] = {
    401: "no API key, or an unknown one",
    403: "the key's role may not call this route",
    404: "no journey for this reservation",
    409: "the journey has finished; it takes no more changes",
    410: "the journey's data was erased",
    413: "the request body is larger than 64 KiB",
    422: "invalid input: `detail` names the field",
    429: "too many requests: try again later",
    503: "Temporal or the database is unavailable: try again shortly",
}

Responses = dict[int | str, dict[str, Any]]

# A 429 says when to come back (`api.rate_limits`).
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                               "schema": {"type": "integer", "minimum": 0}}}


def _headers(code: int) -> dict[str, Any]:
    return {"headers": RETRY_AFTER} if code == 429 else {}


def errors(*codes: int, why: dict[int, str] | None = None) -> Responses:
    """`responses=` for these JSON error answers; `why` replaces a description."""
    why = why or {}
    return {
        code: {
            "model": InvalidInputOut if code == 422 else ErrorOut,
            "description": why.get(code, WHY[code]),
            **_headers(code),
        }
        for code in codes
    }


def page_errors(*codes: int, why: dict[int, str], media_type: str = "text/html") -> Responses:
    """`responses=` for error answers that are a page (or plain text), not JSON."""
    return {
        code: {"description": why[code], "content": {media_type: {"schema": {"type": "string"}}}, **_headers(code)}
        for code in codes
    }


def json_errors_inline(*codes: int, why: dict[int, str] | None = None) -> Responses:
    """JSON error answers of a route whose own answer is not JSON: the schema is
    given inline, so that FastAPI does not list it under the route's media type."""
    why = why or {}
    return {
        code: {
            "description": why.get(code, WHY[code]),
            "content": {"application/json": {"schema": ErrorOut.model_json_schema()}},
            **_headers(code),
        }
        for code in codes
    }


def guest_rate_limited() -> Responses:
    """429 on a guest page: a page in the guest's language, JSON to a program that asks for it
    (`Accept: application/json`) and to a wrong API key (`api.rate_limits`)."""
    return {429: {
        "description": WHY[429],
        "content": {"text/html": {"schema": {"type": "string"}},
                    "application/json": {"schema": ErrorOut.model_json_schema()}},
        **_headers(429),
    }}


# Every keyed route: the key, its role, and the rate limits (a wrong key's too).
ROLE_ERRORS = errors(401, 403, 429)
# A route no limit counts (`/health/…`, `/metrics`) still answers a wrong key over its address's limit.
WRONG_KEYS = "a wrong API key, from an address over its limit of wrong keys (`api.rate_limits`)"
