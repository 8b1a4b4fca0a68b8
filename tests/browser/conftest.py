"""Browser tests: where their screenshots go."""

from __future__ import annotations

from pathlib import Path

import pytest

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def screenshots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """docs/screenshots/ with `--update-screenshots` (for README), else a temporary folder."""
    if request.config.getoption("--update-screenshots"):
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return DOCS_SCREENSHOTS
    return tmp_path
