"""`Idempotency-Key`: a request repeated with the same key is applied once, and
every repeat gets the first answer (same status code, same body).

A route takes `IdempotencyDep` and hands its work to `Once.answer`. The key is
scoped by the caller (its API key; loopback callers share one scope) and the
route, and stored with a fingerprint of the request (method, path, query and
body: JSON compared by value, not by spacing), `guest_journey.idempotent_requests`:

- the same key with the same request, answered: the first answer, with the
  header `Idempotent-Replayed: true`;
- the same key with a different request: 422 naming `Idempotency-Key`;
- the same key while its first request is still running: 409, with
  `Retry-After`; a request whose process stopped frees its key within
  `LEASE` (15 s);
- a first request that failed (4xx, 5xx) keeps nothing: a repeat runs again.

Only successful answers are kept, for `KEEP_FOR` (24 h) after the key's first
use; after that the key may name a new request. `Once.request_id()` derives the
id the journey remembers requests by from the scoped key, so even two
requests that both reach the workflow are applied there once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from api.deps import Services, ServicesDep
from guest_journey import idempotent_requests as stored
from guest_journey.database import utcnow
from guest_journey.idempotent_requests import KEEP_FOR, LEASE, SCOPE_LENGTH
from services.errors import InvalidRequest

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_LENGTH = 200
RENEW_EVERY = LEASE / 3
_REQUEST_IDS = uuid.UUID("5d1c6f0e-8a7b-4c1e-9a43-2f6e0f1b7c55")

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        min_length=1, max_length=KEY_LENGTH,
        description=f"repeat it on a retry: the request is applied once and every repeat gets the first "
        f"answer; a key names one request for {KEEP_FOR.total_seconds() / 3600:.0f} h",
    ),
]
Answer = tuple[int, BaseModel]


@dataclass(frozen=True)
class Once:
    """The request's key (None: no header), its scope and fingerprint."""

    services: Services
    key: str | None
    scope: str
    fingerprint: str

    def request_id(self) -> str:
        """The id the journey remembers this request by: from the scoped key, else new."""
        if self.key is None:
            return uuid.uuid4().hex
        return uuid.uuid5(_REQUEST_IDS, f"{self.scope}\n{self.key}").hex

    async def answer(self, run: Callable[[], Awaitable[Answer]]) -> Response:
        """Run the request once for its key, or replay the answer the key already has."""
        if self.key is None:
            return _response(*await run())
        async with self.services.sessions() as session:
            claim = await stored.claim(session=session, scope=self.scope, key=self.key, fingerprint=self.fingerprint)
        match claim:
            case stored.Answered(status_code=status_code, body=body):
                return Response(content=body, status_code=status_code, media_type="application/json",
                                headers={REPLAYED_HEADER: "true"})
            case stored.Mismatch():
                raise InvalidRequest(f"{HEADER}: reused with a different request; a key names one request "
                                     "(method, path and body) — use a new key for a new request")
            case stored.InFlight(lease_until=lease_until):
                wait = max(1, math.ceil((lease_until - utcnow()).total_seconds()))
                raise HTTPException(409, f"{HEADER}: a request with this key is still in progress; "
                                         "repeat it when that one has answered", headers={"Retry-After": str(wait)})
        renewing = asyncio.create_task(self._renew_lease())
        try:
            response = _response(*await run())
        except BaseException:
            await self._give_up()
            raise
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        async with self.services.sessions() as session:
            await stored.record_answer(session=session, scope=self.scope, key=self.key,
                                       status_code=response.status_code, body=bytes(response.body).decode())
        return response

    async def _renew_lease(self) -> None:
        assert self.key is not None
        while True:
            await asyncio.sleep(RENEW_EVERY.total_seconds())
            try:
                async with self.services.sessions() as session:
                    await stored.renew(session=session, scope=self.scope, key=self.key)
            except Exception:  # the request goes on; a repeat may take the key over
                logger.warning("could not renew an idempotency key's lease", exc_info=True)

    async def _give_up(self) -> None:
        assert self.key is not None
        try:
            async with self.services.sessions() as session:
                await stored.release(session=session, scope=self.scope, key=self.key)
        except Exception:  # its lease runs out instead
            logger.warning("could not give an idempotency key up", exc_info=True)


async def idempotent(request: Request, services: ServicesDep, idempotency_key: IdempotencyKeyHeader = None) -> Once:
    """The request's `Idempotency-Key`, scoped by its caller and route."""
    route = request.scope.get("route")
    scope = f"{_caller(request)}:{request.method} {getattr(route, 'path', request.url.path)}"
    if len(scope) > SCOPE_LENGTH:
        scope = "sha256:" + hashlib.sha256(scope.encode()).hexdigest()
    fingerprint = hashlib.sha256(
        b"\n".join([request.method.encode(), request.url.path.encode(), request.url.query.encode(),
                    _canonical(await request.body())])
    ).hexdigest()
    return Once(services=services, key=idempotency_key, scope=scope, fingerprint=fingerprint)


IdempotencyDep = Annotated[Once, Depends(idempotent)]


def _caller(request: Request) -> str:
    """Whose keys these are: the API key's fingerprint (never the key), else the loopback caller."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return "loopback"


def _canonical(body: bytes) -> bytes:
    try:
        value = json.loads(body)
    except ValueError:
        return body
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _response(status_code: int, body: BaseModel) -> Response:
    return JSONResponse(status_code=status_code, content=body.model_dump(mode="json"))
