"""Security headers on every response (ASGI middleware).

Every HTTP response gets `X-Content-Type-Options: nosniff`,
`Referrer-Policy: no-referrer` and `X-Frame-Options: DENY`; an HTML response
also gets a Content-Security-Policy that allows scripts, styles and images
from this site only. A header the response already set is kept as it is: a
page with its own, stricter or looser, policy (the staff and guest pages set
theirs) decides for itself.

`Strict-Transport-Security` (a year) is sent when the service is served over
https: the public base URL is https (`hsts=True`), or the request itself
arrived over https, which behind a proxy means a proxy in
`GUEST_JOURNEY_TRUSTED_PROXIES` said so in `X-Forwarded-Proto` (uvicorn takes
it from those proxies only: `commands.cli.api_server_config`).
`includeSubDomains` is left out: other names under the hotel's domain are not
ours to decide for.

The interactive API docs (`/docs`, `/redoc`) load Swagger UI and ReDoc from
their CDN with inline scripts, which that policy would block; they get every
header but the CSP.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
STRICT_TRANSPORT_SECURITY = "max-age=31536000"
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")


class SecurityHeaders:
    """Add the headers to each `http.response.start` that does not carry them yet."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        content_security_policy: str = CONTENT_SECURITY_POLICY,
        csp_exempt_paths: Iterable[str] = DOCS_PATHS,
        hsts: bool = False,
    ) -> None:
        self.app = app
        self.hsts = hsts
        self.content_security_policy = content_security_policy
        self.csp_exempt_paths = frozenset(csp_exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wants_csp = scope.get("path", "") not in self.csp_exempt_paths
        wants_hsts = self.hsts or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                is_html = headers.get("content-type", "").lower().startswith("text/html")
                if wants_csp and is_html:
                    headers.setdefault("Content-Security-Policy", self.content_security_policy)
                if wants_hsts:
                    headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
            await send(message)

        await self.app(scope, receive, send_with_headers)
