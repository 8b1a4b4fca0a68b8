"""Request body limits: a body over the limit is refused with 413 before it is read whole.

Every route takes at most `MAX_BODY_BYTES` (64 KiB), but for the routes of
`BODY_LIMITS_BY_PATH`, which set their own:

| path | limit | why |
| --- | --- | --- |
| `/webhooks/whatsapp` | 3 MiB | Meta batches many statuses and messages into one request |
| `/reservations/batch` | 2 MiB | up to 1,000 reservations of about a kilobyte each (`services.reservation_import.BATCH_LIMIT`) |
| `/codec/decode`, `/codec/encode` | 4 MiB | the Temporal UI sends a history page's payloads at once; 4 MiB is gRPC's default message limit, which no history event exceeds |

`WHATSAPP_WEBHOOK_MAX_BODY_BYTES` comes from Meta's Webhooks reference for the
WhatsApp Cloud API (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks):
"Webhooks payloads can be up to 3MB." Refusing a larger body would refuse Meta:
it redelivers, again and again, and the statuses in it arrive late or never. 3 MiB
(3,145,728 bytes) holds "3MB" however it is counted (3,000,000 or 3 × 2^20 bytes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
MIB = 1024 * KIB

WHATSAPP_WEBHOOK_PATH = "/webhooks/whatsapp"

MAX_BODY_BYTES = 64 * KIB
WHATSAPP_WEBHOOK_MAX_BODY_BYTES = 3 * MIB  # Meta: "Webhooks payloads can be up to 3MB" (module docstring)
CODEC_MAX_BODY_BYTES = 4 * MIB  # gRPC's default message limit (module docstring)
BATCH_MAX_BODY_BYTES = 2 * MIB  # 1,000 reservations (module docstring)
BODY_LIMITS_BY_PATH: Mapping[str, int] = {
    WHATSAPP_WEBHOOK_PATH: WHATSAPP_WEBHOOK_MAX_BODY_BYTES,
    "/codec/decode": CODEC_MAX_BODY_BYTES,
    "/reservations/batch": BATCH_MAX_BODY_BYTES,
    "/codec/encode": CODEC_MAX_BODY_BYTES,
}


class BodyTooLarge(Exception):
    pass


def body_limit(path: str, *, default: int = MAX_BODY_BYTES,
               by_path: Mapping[str, int] = BODY_LIMITS_BY_PATH) -> int:
    """The most bytes a request to `path` may carry."""
    return by_path.get(path, default)


def size_text(size: int) -> str:
    """`3 MiB`, `64 KiB`: a limit as the 413 names it."""
    return f"{size // MIB} MiB" if size % MIB == 0 else f"{size // KIB} KiB"


class BodySizeLimit:
    """ASGI middleware: 413 when Content-Length or the streamed body exceeds the path's limit."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES,
                 by_path: Mapping[str, int] = BODY_LIMITS_BY_PATH) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.by_path = by_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = body_limit(scope["path"], default=self.max_bytes, by_path=self.by_path)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._refuse(send, max_bytes)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, max_bytes)

    async def _refuse(self, send: Send, max_bytes: int) -> None:
        body = json.dumps({"detail": f"the request body is larger than {size_text(max_bytes)}"}).encode()
        headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
