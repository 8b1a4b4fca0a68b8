"""Cross-origin calls to the codec endpoint from the Temporal UI, and to nothing else.

The Temporal UI decodes payloads from the browser (`api.routes.codec`), so the
browser must be let to post from the UI's origin (`GUEST_JOURNEY_TEMPORAL_UI_URL`,
or the dev server's UI) with `Authorization`, `Content-Type` and `X-Namespace`,
and credentials when the UI is set to include them. Every other route keeps
the browser's same-origin rule: this middleware passes their requests through
untouched.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

CODEC_HEADERS = ["authorization", "content-type", "x-namespace"]


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class CodecCors:
    """ASGI middleware: CORS for the Temporal UI's origin on paths under `prefix` only."""

    def __init__(self, app: ASGIApp, *, prefix: str, temporal_ui_url: str) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/") + "/"
        self.cors = CORSMiddleware(
            app, allow_origins=[origin_of(temporal_ui_url)], allow_methods=["POST"],
            allow_headers=CODEC_HEADERS, allow_credentials=True, max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
