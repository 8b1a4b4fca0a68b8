"""A WhatsApp Cloud API stand-in that takes every message and then loses its answer.

    async with WhatsAppStandIn(answer=lambda to: Answer.late, webhooks=..., ...) as api:
        ...the worker sends to api.base_url...
        api.received        # our message id of every message it took, in order

Every `POST {base_url}/{phone_number_id}/messages` with the right bearer token
is taken: the guest counts as having received it, under a `wamid.` of the
stand-in's own. What the sender hears back depends on `answer(to)`:

- `Answer.at_once`: Meta's success answer with that wamid;
- `Answer.late`: the same answer, but only after `late_by` seconds (longer
  than the worker's client timeout, so the worker never reads it);
- `Answer.without_id`: 200 at once, but no `messages[].id` in the body.

When `webhooks(to)` is true, Meta's status webhooks follow, each signed with
the app secret as `X-Hub-Signature-256` and carrying the request's
`biz_opaque_callback_data` (our message id) as Meta echoes it: `sent` after a
random pause of up to `report_within` seconds, `delivered` a moment later,
each posted to the API's `/webhooks/whatsapp` and, like Meta, posted again
while the API does not answer 2xx.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fake_whatsapp import API_VERSION, error_body
from tests.loopback_servers import LoopbackServer, free_socket, serve_app

WEBHOOK_PATH = "/webhooks/whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_TRIES = 20
WEBHOOK_RETRY_AFTER = 0.5


class Answer(StrEnum):
    at_once = "at_once"
    late = "late"
    without_id = "without_id"


@dataclass(frozen=True)
class TakenMessage:
    """One message the stand-in took: the guest has it."""

    callback_data: str | None  # our message id, as the worker sent it in biz_opaque_callback_data
    wamid: str
    to: str
    answer: Answer
    at: float  # time.monotonic()


@dataclass
class WebhookCounts:
    delivered: int = 0  # answered 2xx by the API
    refused: int = 0  # answered otherwise, or not at all (and posted again)
    given_up: int = 0  # never answered 2xx after WEBHOOK_TRIES tries


def signed(body: bytes, app_secret: str) -> str:
    """Meta's `X-Hub-Signature-256` of a webhook body."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def status_webhook(
    *, phone_number_id: str, wamid: str, status: str, to: str, callback_data: str | None, at: float
) -> dict[str, Any]:
    """Meta's status webhook for one message."""
    report: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(at)),
        "recipient_id": to,
        "conversation": {"id": uuid.uuid4().hex, "origin": {"type": "utility"}},
        "pricing": {"billable": True, "pricing_model": "CBP", "category": "utility"},
    }
    if callback_data is not None:
        report["biz_opaque_callback_data"] = callback_data
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": phone_number_id,
                            },
                            "statuses": [report],
                        },
                    }
                ],
            }
        ],
    }


class WhatsAppStandIn(LoopbackServer):
    def __init__(
        self,
        *,
        access_token: str,
        answer: Callable[[str], Answer],
        webhooks: Callable[[str], bool],
        late_by: float,
        report_within: float,
        rng: random.Random,
        api_url: str | None = None,
        app_secret: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        """`answer` and `webhooks` are asked with the request's `to` (digits only);
        `api_url` and `app_secret` are needed only when some message gets webhooks."""
        self.access_token = access_token
        self.answer = answer
        self.webhooks = webhooks
        self.late_by = late_by
        self.report_within = report_within
        self.rng = rng
        self.api_url = api_url
        self.app_secret = app_secret
        self.host = host
        self.taken: list[TakenMessage] = []
        self.unauthorised = 0
        self.webhook_counts = WebhookCounts()
        self._reports: set[asyncio.Task[None]] = set()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._port: int | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the WhatsApp stand-in is not started")
        return f"http://{self.host}:{self._port}/{API_VERSION}"

    @property
    def received(self) -> list[str]:
        """Our message id of every message taken (`?` for one sent without it)."""
        return [message.callback_data or "?" for message in self.taken]

    @property
    def reports_pending(self) -> int:
        return len(self._reports)

    async def wait_for_reports(self, timeout: float = 30.0) -> None:
        """Until every status webhook so far has been posted (or given up)."""
        if self._reports:
            await asyncio.wait(set(self._reports), timeout=timeout)

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT)
        sock = free_socket(self.host)
        self._port = int(sock.getsockname()[1])
        self._server, self._task = await serve_app(self._app(), sock, "the WhatsApp stand-in")

    async def stop(self) -> None:
        for report in list(self._reports):
            report.cancel()
        if self._reports:
            await asyncio.wait(set(self._reports))
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        if self._http is not None:
            await self._http.aclose()
        self._server = self._task = self._http = None

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{version}/{phone_number_id}/messages")
        async def messages(version: str, phone_number_id: str, request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {self.access_token}":
                self.unauthorised += 1
                return JSONResponse(error_body(190, subcode=463), status_code=401)
            try:
                body = await request.json()
            except ValueError:
                return JSONResponse(error_body(100), status_code=400)
            to = str(body.get("to") or "") if isinstance(body, dict) else ""
            callback_data = body.get("biz_opaque_callback_data") if isinstance(body, dict) else None
            answer = self.answer(to)
            taken = TakenMessage(
                callback_data=callback_data if isinstance(callback_data, str) else None,
                wamid=f"wamid.{uuid.uuid4().hex.upper()}",
                to=to,
                answer=answer,
                at=time.monotonic(),
            )
            self.taken.append(taken)
            if self.webhooks(to):
                report = asyncio.create_task(self._report(phone_number_id, taken))
                self._reports.add(report)
                report.add_done_callback(self._reports.discard)
            if answer is Answer.without_id:
                return JSONResponse({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}]})
            if answer is Answer.late:
                await asyncio.sleep(self.late_by)  # the worker has stopped listening by now
            return JSONResponse(
                {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": to, "wa_id": to}],
                    "messages": [{"id": taken.wamid, "message_status": "accepted"}],
                }
            )

        return app

    async def _report(self, phone_number_id: str, taken: TakenMessage) -> None:
        """`sent`, then `delivered`, as Meta reports them."""
        await asyncio.sleep(self.rng.uniform(0.1, self.report_within))
        for status in ("sent", "delivered"):
            payload = status_webhook(
                phone_number_id=phone_number_id, wamid=taken.wamid, status=status, to=taken.to,
                callback_data=taken.callback_data, at=time.time(),
            )
            await self._post_webhook(json.dumps(payload).encode())
            await asyncio.sleep(self.rng.uniform(0.05, 0.5))

    async def _post_webhook(self, body: bytes) -> None:
        if self.api_url is None or self.app_secret is None or self._http is None:
            raise RuntimeError("status webhooks need the API's URL and the app secret")
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signed(body, self.app_secret)}
        for _ in range(WEBHOOK_TRIES):
            try:
                response = await self._http.post(f"{self.api_url}{WEBHOOK_PATH}", content=body, headers=headers)
            except httpx.TransportError:
                pass
            else:
                if response.is_success:
                    self.webhook_counts.delivered += 1
                    return
            self.webhook_counts.refused += 1
            await asyncio.sleep(WEBHOOK_RETRY_AFTER)
        self.webhook_counts.given_up += 1
