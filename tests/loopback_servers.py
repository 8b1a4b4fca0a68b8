"""What the tests' stand-in servers on loopback share: `async with` to run one,
and uvicorn serving a FastAPI app in the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType
from typing import Self

import uvicorn
from fastapi import FastAPI


class LoopbackServer:
    """A test server: `async with server:` starts it, and stops it at the end."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()


def free_socket(host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on a free port, handed to uvicorn (no race for the port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(64)
    sock.setblocking(False)
    return sock


class _QuietServer(uvicorn.Server):
    """Leaves the test runner's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_app(app: FastAPI, sock: socket.socket, name: str) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """uvicorn serving `app` on `sock` in this event loop, once it has started;
    stop it with `server.should_exit = True` and await the task."""
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise RuntimeError(f"{name} did not start")
        await asyncio.sleep(0.01)
    return server, task
