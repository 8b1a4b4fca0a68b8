"""Which names the API answers to, and which origins its forms accept.

Without API keys (development), a caller on loopback is admin
(`api.deps.caller_role`). A browser can be made to reach loopback under a
foreign name (DNS rebinding), and a relay (socat, `ssh -R`) makes a remote
caller look local; both show in the `Host` header. So without API keys the
app serves only the hosts `localhost`, `127.0.0.1`, `[::1]` (any port) and
the host of `GUEST_JOURNEY_PUBLIC_BASE_URL`; any other Host is answered
`421 Misdirected Request` (400 when there is no Host at all) before any
route runs. A relay that rewrites Host to `localhost` is not stopped by this:
a server without API keys must listen on loopback only
(`GUEST_JOURNEY_API_HOST`, the default `127.0.0.1`).

With API keys (always in production) every route but the guest pages,
health and metrics needs a key or a staff session, which a rebinding page
cannot send, and the proxy in front decides which names reach the app; the
Host is not checked.

Forms (guest pages, staff pages) compare `Origin` with the origin of
`GUEST_JOURNEY_PUBLIC_BASE_URL` (scheme, host, port), not with the Host the
request arrived with: a proxy in front (nginx by default) rewrites Host.
When the public base URL is a loopback address (the development default),
any loopback origin is accepted too (`http://localhost:8000` for
`http://127.0.0.1:8000`).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(netloc: str) -> str | None:
    """The host of a `Host` header or URL authority, lower-case, without port or brackets."""
    try:
        name = urlsplit("//" + netloc.strip()).hostname
    except ValueError:
        return None
    return name.rstrip(".") if name else None


def is_loopback_name(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of a URL, the default port left out; None when it is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def origin_allowed(public_base_url: str, origin: str) -> bool:
    """Whether a form posted with this `Origin` came from our own pages."""
    given, ours = origin_of(origin), origin_of(public_base_url)
    if given is None or ours is None:
        return False
    if given == ours:
        return True
    ours_host, given_host = urlsplit(ours).hostname or "", urlsplit(given).hostname or ""
    return is_loopback_name(ours_host) and is_loopback_name(given_host)


class AllowedHosts:
    """ASGI middleware: 421 for a `Host` that is not loopback or the public base URL's host."""

    def __init__(self, app: ASGIApp, *, public_base_url: str) -> None:
        self.app = app
        public = urlsplit(public_base_url).hostname
        self.allowed = LOOPBACK_HOSTS | ({public.lower()} if public else set())
        self.public_base_url = public_base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = next((value.decode("latin-1") for name, value in scope.get("headers") or [] if name == b"host"), None)
        if host is None:
            await self._refuse(scope, receive, send, 400, "the request has no Host header")
            return
        name = host_name(host)
        if name is None or name not in self.allowed:
            detail = (
                "this server has no API keys and answers only to localhost, 127.0.0.1, [::1] and the host of "
                f"GUEST_JOURNEY_PUBLIC_BASE_URL ({self.public_base_url}); set GUEST_JOURNEY_API_KEYS to serve "
                "other names"
            )
            await self._refuse(scope, receive, send, 421, detail)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
