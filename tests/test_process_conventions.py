"""What a newcomer expects of the processes (issue 11, item 7): `--version`,
`GUEST_JOURNEY_LOG_LEVEL`, readable logs at a terminal and JSON otherwise, and
OpenTelemetry's own service name honoured, with the release's version."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from importlib.metadata import version

import pytest

from guest_journey.logs import configure_logging
from guest_journey.telemetry import process_resource


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("GUEST_JOURNEY_")}
    return subprocess.run([sys.executable, "-m", "commands.cli", *args], env={**environment, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_version_is_the_installed_release() -> None:
    answer = cli("--version")
    assert answer.returncode == 0
    assert answer.stdout == f"guest-journey {version('guest-journey')}\n"


def test_an_unknown_log_level_is_refused_naming_the_setting(tmp_path) -> None:
    answer = cli("db", "current", GUEST_JOURNEY_LOG_LEVEL="loud", GUEST_JOURNEY_DATA_DIR=str(tmp_path))
    assert answer.returncode == 2
    assert answer.stderr.startswith("guest-journey db: invalid settings: GUEST_JOURNEY_LOG_LEVEL:")
    assert "'debug', 'info', 'warning' or 'error'" in answer.stderr


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_a_terminal_gets_readable_lines_and_anything_else_json(restore_logging) -> None:
    terminal, pipe = Terminal(), io.StringIO()
    log = logging.getLogger("guest_journey.test")

    configure_logging("info", stream=terminal)
    log.info("journey started", extra={"reservation_id": "R1", "guest": "ana@example.com"})
    configure_logging("info", stream=pipe)
    log.info("journey started", extra={"reservation_id": "R1"})

    line = terminal.getvalue()
    assert " info    guest_journey.test: journey started  reservation_id=R1" in line
    assert "ana@example.com" not in line  # masked at a terminal too
    assert json.loads(pipe.getvalue())["reservation_id"] == "R1"


def test_the_log_level_hides_what_is_below_it(restore_logging) -> None:
    pipe = io.StringIO()
    configure_logging("warning", stream=pipe)
    logging.getLogger("guest_journey.test").info("routine")
    logging.getLogger("guest_journey.test").warning("look at this")
    assert [json.loads(line)["message"] for line in pipe.getvalue().splitlines()] == ["look at this"]


def test_otel_service_name_wins_over_the_default_and_the_version_is_set(monkeypatch) -> None:
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    assert process_resource("guest-journey-api").attributes["service.name"] == "guest-journey-api"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "copacabana-journeys")
    resource = process_resource("guest-journey-api")
    assert resource.attributes["service.name"] == "copacabana-journeys"
    assert resource.attributes["service.version"] == version("guest-journey")
