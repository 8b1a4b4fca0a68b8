from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.smtp_server import SmtpTestServer


@pytest.fixture
async def smtp_server() -> AsyncIterator[SmtpTestServer]:
    """A real SMTP server on 127.0.0.1: `.host`, `.port`, `.received` (parsed messages)."""
    async with SmtpTestServer() as server:
        yield server
