"""The internal listener where a process serves its Prometheus metrics
(`GUEST_JOURNEY_METRICS_ADDRESS`): a worker always when the setting is given,
the API in production (its public `/metrics` is then 404).

Two routes, nothing else: `GET /metrics` (every series of the process,
`guest_journey.telemetry.metrics_text`) and `GET /health/live` (the process
answers). A tiny asyncio HTTP/1.1 server, so that the scrape runs in the
process's own event loop: `before_scrape` (the worker's: the KPI gauges from
the stored snapshots, `services.kpi_gauges.publish_kpi_gauges`) awaits the
database like any other coroutine. One request per connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from guest_journey.addresses import split_host_port
from guest_journey.telemetry import METRICS_CONTENT_TYPE, metrics_text

logger = logging.getLogger(__name__)
REQUEST_TIMEOUT_SECONDS = 10.0
MAX_REQUEST_HEAD = 8 * 1024
BeforeScrape = Callable[[], Awaitable[object]]


class MetricsServerError(RuntimeError):
    """The metrics address cannot be listened on (taken, or not this machine's)."""


class MetricsServer:
    """`async with MetricsServer("0.0.0.0:9464"):` serves until the block ends."""

    def __init__(self, address: str, *, before_scrape: BeforeScrape | None = None) -> None:
        self.address = address
        self.host, self.port = split_host_port(address)
        self._before_scrape = before_scrape
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._answer, self.host, self.port)
        except OSError as error:
            raise MetricsServerError(
                f"cannot serve metrics at GUEST_JOURNEY_METRICS_ADDRESS={self.address}: {error.strerror or error}"
            ) from error
        logger.info("Prometheus metrics at http://%s/metrics", self.address, extra={"metrics_address": self.address})

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MetricsServer:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_SECONDS)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
                return
            if len(head) > MAX_REQUEST_HEAD:
                await _respond(writer, 431, b"request head too large\n")
                return
            method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if path not in ("/metrics", "/health/live"):
                await _respond(writer, 404, b"not found: GET /metrics or /health/live\n")
            elif method not in ("GET", "HEAD"):
                await _respond(writer, 405, b"method not allowed\n", extra=[("Allow", "GET, HEAD")])
            elif path == "/health/live":
                await _respond(writer, 200, b'{"status":"ok"}', "application/json", head_only=method == "HEAD")
            else:
                await self._refresh()
                await _respond(writer, 200, metrics_text(), METRICS_CONTENT_TYPE, head_only=method == "HEAD")
        except ConnectionError:
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    async def _refresh(self) -> None:
        """Run `before_scrape`; a failure is logged and the series are served as they are."""
        if self._before_scrape is None:
            return
        try:
            await asyncio.wait_for(self._before_scrape(), REQUEST_TIMEOUT_SECONDS)
        except Exception:
            logger.warning("metrics refresh before a scrape failed; serving the series as they were",
                           exc_info=True)


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    *,
    head_only: bool = False,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    reasons = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 431: "Request Header Fields Too Large"}
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("Connection", "close"),
        *(extra or []),
    ]
    lines = [f"HTTP/1.1 {status} {reasons[status]}", *(f"{name}: {value}" for name, value in headers)]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    if not head_only:
        writer.write(body)
    await writer.drain()
