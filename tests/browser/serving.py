"""The app over real HTTP for the browser: uvicorn on 127.0.0.1, in the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import uvicorn

from api.app import create_app
from guest_journey.settings import Settings


async def serve(settings: Settings) -> AsyncIterator[str]:
    """Serve the app at `settings.public_base_url` (so e-mailed links work); yields that URL."""
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    async with asyncio.timeout(15):
        while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
            await asyncio.sleep(0.02)
    try:
        yield settings.public_base_url
    finally:
        server.should_exit = True
        await serving
