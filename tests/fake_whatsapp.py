"""A WhatsApp Cloud API stand-in on loopback: FastAPI served by uvicorn in this event loop.

    async with FakeWhatsAppApi(access_token="test-token") as api:
        sender = WhatsAppSender("1234567890", "test-token", api.base_url)
        api.fail_next(status=429, code=130429, times=2)
        ...
        await api.wait_for(1)   # until one request has arrived
        api.requests[0].json["type"]

Every `POST {base_url}/{phone_number_id}/messages` is recorded in `.requests`.
While an outage is on (`start_outage(status=429, code=130429)` until
`end_outage()`), every request gets that error. Otherwise queued answers
(`fail_next`, `reply_next`) are used first, in order; then each request gets
Meta's success answer with a fresh `wamid.` id. A request whose
bearer token is not `access_token` gets Meta's 401 / code 190, as the real API does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.loopback_servers import LoopbackServer, free_socket, serve_app

API_VERSION = "v21.0"

# Meta's own wording for the errors tests ask for by code.
ERROR_MESSAGES = {
    4: "(#4) Application request limit reached",
    100: "(#100) Invalid parameter",
    190: "Error validating access token: Session has expired.",
    368: "Temporarily blocked for policies violations",
    130429: "(#130429) Rate limit hit",
    131000: "Something went wrong",
    131016: "Service unavailable",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
}
ERROR_TYPES = {190: "OAuthException", 4: "OAuthException"}


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class _Answer:
    status: int
    body: Any
    delay: float = 0.0


def error_body(
    code: int,
    *,
    message: str | None = None,
    subcode: int | None = None,
    details: str | None = None,
) -> dict[str, Any]:
    """Meta's Graph API error object."""
    error: dict[str, Any] = {
        "message": message or ERROR_MESSAGES.get(code, f"(#{code}) Error"),
        "type": ERROR_TYPES.get(code, "OAuthException" if code < 1000 else "GraphMethodException"),
        "code": code,
        "error_data": {
            "messaging_product": "whatsapp",
            "details": details or ERROR_MESSAGES.get(code, "Unknown error"),
        },
        "fbtrace_id": f"A{uuid.uuid4().hex[:22]}",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


class FakeWhatsAppApi(LoopbackServer):
    def __init__(self, *, access_token: str | None = None, host: str = "127.0.0.1") -> None:
        self.access_token = access_token
        self.host = host
        self.requests: list[ReceivedRequest] = []
        self.sent_ids: list[str] = []
        self._queue: deque[_Answer] = deque()
        self._outage: _Answer | None = None
        self.refused_in_outage = 0
        self._arrived = asyncio.Condition()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        """What `GUEST_JOURNEY_WHATSAPP_API_BASE_URL` would be: `http://127.0.0.1:<port>/v21.0`."""
        if self._port is None:
            raise RuntimeError("FakeWhatsAppApi is not started")
        return f"http://{self.host}:{self._port}/{API_VERSION}"

    def fail_next(
        self,
        *,
        status: int = 400,
        code: int,
        times: int = 1,
        message: str | None = None,
        subcode: int | None = None,
        details: str | None = None,
    ) -> None:
        """The next `times` requests get Meta's error answer with this HTTP status and code."""
        for _ in range(times):
            body = error_body(code, message=message, subcode=subcode, details=details)
            self._queue.append(_Answer(status, body))

    def reply_next(
        self, *, status: int = 200, body: Any = None, times: int = 1, delay: float = 0.0
    ) -> None:
        """The next `times` requests get this answer: JSON, or a `str` as an HTML page.

        `status=200, body=None` is Meta's success body (after `delay` seconds).
        """
        for _ in range(times):
            self._queue.append(_Answer(status, body, delay))

    def start_outage(self, *, status: int, code: int) -> None:
        """Every request gets Meta's error answer with this status and code until
        `end_outage()`: the provider rate limiting or down for a while."""
        self._outage = _Answer(status, error_body(code))

    def end_outage(self) -> None:
        self._outage = None

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedRequest]:
        """Wait until `count` requests have arrived (the server runs in this event loop)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests

    async def start(self) -> None:
        sock = free_socket(self.host)
        self._port = int(sock.getsockname()[1])
        self._server, self._task = await serve_app(self._app(), sock, "the fake WhatsApp API")

    async def stop(self) -> None:
        """Stop listening: later requests find the port closed (connection refused)."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = None
        self._task = None

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{version}/{phone_number_id}/messages")
        async def messages(version: str, phone_number_id: str, request: Request) -> Response:
            try:
                body = await request.json()
            except ValueError:
                body = None
            self.requests.append(
                ReceivedRequest(
                    method=request.method,
                    path=request.url.path,
                    headers={name.lower(): value for name, value in request.headers.items()},
                    json=body,
                )
            )
            async with self._arrived:
                self._arrived.notify_all()
            if self.access_token is not None:
                if request.headers.get("authorization") != f"Bearer {self.access_token}":
                    return JSONResponse(error_body(190, subcode=463), status_code=401)
            if self._outage is not None:
                self.refused_in_outage += 1
                return JSONResponse(self._outage.body, status_code=self._outage.status)
            if self._queue:
                answer = self._queue.popleft()
                if answer.delay:
                    await asyncio.sleep(answer.delay)
                if isinstance(answer.body, str):
                    return Response(answer.body, status_code=answer.status, media_type="text/html")
                if answer.body is not None or answer.status >= 300:
                    return JSONResponse(answer.body, status_code=answer.status)
            return JSONResponse(self._success(body))

        return app

    def _success(self, body: Any) -> dict[str, Any]:
        wamid = f"wamid.{uuid.uuid4().hex.upper()}"
        self.sent_ids.append(wamid)
        to = body.get("to") if isinstance(body, dict) else None
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid, "message_status": "accepted"}],
        }
