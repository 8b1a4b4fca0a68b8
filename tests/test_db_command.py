"""`guest-journey db upgrade|current` as an operator runs them, and what the
production processes say when the schema has not been upgraded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from guest_journey.schema import head_revision
from guest_journey.settings import Settings
from tests.databases import postgres_schema

TIMEOUT = 60


def run(command: list[str], settings_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GUEST_JOURNEY_", "OTEL_"))}
    env.update(settings_env)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def cli(*args: str, settings_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "commands.cli", *args], settings_env)


def env_of(settings: Settings) -> dict[str, str]:
    env = {"GUEST_JOURNEY_DATA_DIR": str(settings.data_dir)}
    if settings.database_url is not None:
        env["GUEST_JOURNEY_DATABASE_URL"] = settings.database_url
    return env


def production_env(database_url: str) -> dict[str, str]:
    return {
        "GUEST_JOURNEY_ENV": "production",
        "GUEST_JOURNEY_DATABASE_URL": database_url,
        "GUEST_JOURNEY_API_KEYS": "pms-key-0123456789abcdefghij:reservations",
        "GUEST_JOURNEY_SECRET_KEY": "production-secret-0123456789abcdef",
        "GUEST_JOURNEY_TEMPORAL_ADDRESS": "127.0.0.1:1",
        "GUEST_JOURNEY_SMTP_HOST": "127.0.0.1",
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_db_current_says_what_to_run_then_db_upgrade_brings_the_schema_to_the_head(settings: Settings) -> None:
    env = env_of(settings)
    before = cli("db", "current", settings_env=env)
    assert before.returncode == 0, before.stderr
    assert before.stdout == f"none (this release needs {head_revision()}: run `guest-journey db upgrade`)\n"

    for _ in range(2):  # the second run has nothing to do
        upgraded = cli("db", "upgrade", settings_env=env)
        assert upgraded.returncode == 0, upgraded.stderr
        assert f"database schema at revision {head_revision()} (head)" in upgraded.stderr

    after = cli("db", "current", settings_env=env)
    assert after.stdout == f"{head_revision()} (head)\n"


def test_production_processes_refuse_an_old_schema_until_db_upgrade_runs() -> None:
    with postgres_schema() as database_url:
        env = production_env(database_url)
        worker = run([sys.executable, "-m", "worker"], env)
        api = cli("api", settings_env={**env, "GUEST_JOURNEY_API_PORT": str(free_port())})
        upgraded = cli("db", "upgrade", settings_env=env)
        current = cli("db", "current", settings_env=env)

    assert worker.returncode == 1
    assert worker.stderr.startswith("worker: the database has no schema yet")
    assert "run `guest-journey db upgrade`" in worker.stderr
    assert api.returncode == 1
    assert api.stderr.startswith("guest-journey api: the database has no schema yet")
    assert "run `guest-journey db upgrade`" in api.stderr
    for refused in (worker, api):
        assert refused.stderr.count("\n") == 1, refused.stderr  # one line saying why, no traceback
    assert upgraded.returncode == 0, upgraded.stderr
    assert current.stdout == f"{head_revision()} (head)\n"


def test_a_production_worker_refuses_to_keep_e_mails_on_its_disk() -> None:
    with postgres_schema() as database_url:
        env = {key: value for key, value in production_env(database_url).items()
               if key != "GUEST_JOURNEY_SMTP_HOST"}
        worker = run([sys.executable, "-m", "worker"], env)
        weak = run([sys.executable, "-m", "worker"], {**env, "GUEST_JOURNEY_SECRET_KEY": "short"})

    assert worker.returncode == 1
    assert worker.stderr == (
        "worker: production sends guests' e-mail through an SMTP relay, never to a local outbox: "
        "set GUEST_JOURNEY_SMTP_HOST (and _SMTP_PORT, _SMTP_USERNAME, _SMTP_PASSWORD as the relay needs)\n"
    )
    assert weak.returncode == 1
    assert weak.stderr.startswith("worker: invalid settings: ") and "128 bits" in weak.stderr
    assert weak.stderr.count("\n") == 1
