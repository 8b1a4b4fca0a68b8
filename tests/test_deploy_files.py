"""The deployment files: docker-compose.yml is valid for `docker-compose` and
wires the production shape; nothing secret is written in it; the Dockerfile
pins its base image and runs as a non-root user; the search attributes that
are registered are the ones the code uses.

`docker-compose` (Debian's package, 1.29) validates the file without a Docker
engine; CI installs it (`apt-get install -y docker-compose`). 1.29 knows every key
the file uses (`profiles`, `condition: service_completed_successfully`), so
`docker-compose config` is a real check. Nothing here starts a container: the
shell the one-shot Temporal services run is checked with `sh -n`, and run against
stand-ins for `temporal-sql-tool` and `temporal`. The Temporal versions and the
dynamic config are checked in tests/test_compose_temporal.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from guest_journey.temporal import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
REGISTER_SCRIPT = ROOT / "deploy" / "register-search-attributes.sh"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"

SERVICES = {
    "postgresql", "temporal-schema", "temporal", "temporal-namespace", "temporal-admin-tools", "temporal-ui",
    "mailpit", "migrate", "api", "worker",
}
# The Temporal services: PostgreSQL's network only, one release, capabilities dropped.
TEMPORAL_SERVICES = ("temporal-schema", "temporal", "temporal-namespace", "temporal-admin-tools")
# What .env must provide; each one stands for a secret or a site-specific address.
REQUIRED = {
    "TEMPORAL_DB_PASSWORD": "t3mporal0db0pw",
    "GUEST_JOURNEY_DB_PASSWORD": "app0db0pw0x9",
    "GUEST_JOURNEY_API_KEYS": "pms-k3y:reservations,desk-k3y:ops",
    "GUEST_JOURNEY_SECRET_KEY": "s1gning-k3y-for-tests",
    "GUEST_JOURNEY_PUBLIC_BASE_URL": "https://journey.hotel.example",
}
# Also required, though not secret: the SMTP relay (Mailpit only exists with --profile dev).
COMPOSE_VALUES = {**REQUIRED, "GUEST_JOURNEY_SMTP_HOST": "smtp.hotel.example"}
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|API_KEYS|DATABASE_URL")
REQUIRED_VALUE = re.compile(r"\$\{[A-Z0-9_]+:\?[^}]*\}")


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail(
            "docker-compose is not installed; it validates docker-compose.yml without a Docker engine: "
            "apt-get install -y docker-compose (CI installs it in .ci/run)"
        )
    return found


def run_compose(tmp_path: Path, values: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with exactly `values` as its .env: neither the caller's
    shell nor a developer's own .env leaks in."""
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run(
        [docker_compose(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", *args],
        capture_output=True, text=True, env=environment, cwd=ROOT, timeout=60,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The configuration `docker-compose` would run, interpolated with test values."""
    result = run_compose(tmp_path_factory.mktemp("compose"), COMPOSE_VALUES)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@cache
def raw_compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def environment_of(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


# -- docker-compose.yml ---------------------------------------------------------


def test_compose_file_is_valid(tmp_path: Path) -> None:
    result = run_compose(tmp_path, COMPOSE_VALUES, "-q")
    assert result.returncode == 0, f"docker-compose config -q failed:\n{result.stderr}"


def test_compose_has_the_production_services(rendered: dict[str, Any]) -> None:
    assert set(rendered["services"]) == SERVICES


@pytest.mark.parametrize("missing", sorted(COMPOSE_VALUES))
def test_every_secret_must_come_from_the_environment(tmp_path: Path, missing: str) -> None:
    values = {name: value for name, value in COMPOSE_VALUES.items() if name != missing}
    result = run_compose(tmp_path, values, "-q")
    assert result.returncode != 0, f"docker-compose accepted the file without {missing}"
    assert missing in result.stderr


def test_no_secret_value_is_written_in_the_compose_file() -> None:
    text = COMPOSE_FILE.read_text()
    for value in REQUIRED.values():
        assert value not in text
    for name, service in raw_compose()["services"].items():
        for variable, value in environment_of(service).items():
            if not SECRET_NAME.search(variable) or value is None:
                continue  # passed on from .env when set there
            assert REQUIRED_VALUE.search(str(value)), (
                f"{name}: {variable} must be read from .env as ${{VAR:?message}}, not written or defaulted"
            )
            literal = REQUIRED_VALUE.sub("", str(value))
            if "://" in literal:
                assert not urlsplit(literal).password, f"{name}: {variable} carries a password"
            else:
                assert literal == "", f"{name}: {variable} has a literal part {literal!r}"


def test_the_env_example_lists_every_required_value() -> None:
    example = ENV_EXAMPLE.read_text()
    for name in COMPOSE_VALUES:
        assert re.search(rf"^{name}=$", example, re.MULTILINE), f"{name} missing (or filled in) in {ENV_EXAMPLE}"


def test_images_are_pinned(rendered: dict[str, Any]) -> None:
    for name, service in rendered["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and re.search(r"\d+\.\d+", tag), (
            f"{name}: image {image!r} is not pinned to a version"
        )


def test_api_and_worker_run_the_same_image_in_production(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    api, worker = services["api"], services["worker"]
    assert api["image"] == worker["image"]
    assert api["command"] == ["guest-journey", "api"]
    assert worker["command"] == ["python", "-m", "worker"]
    assert "container_name" not in worker, "a fixed container name prevents --scale worker=N"
    assert not worker.get("ports"), "workers serve nothing"
    for service in (api, worker):
        env = service["environment"]
        assert env["GUEST_JOURNEY_ENV"] == "production"
        assert env["GUEST_JOURNEY_TEMPORAL_ADDRESS"] == "temporal:7233"
        url = urlsplit(env["GUEST_JOURNEY_DATABASE_URL"])
        assert url.scheme == "postgresql+psycopg" and url.hostname == "postgresql"
        assert url.password == REQUIRED["GUEST_JOURNEY_DB_PASSWORD"]
        assert env["GUEST_JOURNEY_API_KEYS"] == REQUIRED["GUEST_JOURNEY_API_KEYS"]
        assert env["GUEST_JOURNEY_SECRET_KEY"] == REQUIRED["GUEST_JOURNEY_SECRET_KEY"]
        assert env["GUEST_JOURNEY_SMTP_HOST"] == COMPOSE_VALUES["GUEST_JOURNEY_SMTP_HOST"]
        assert env["GUEST_JOURNEY_SMTP_PORT"] is None, "the port is the relay's (the app's default by TLS mode)"


def test_only_the_api_and_the_uis_are_published(rendered: dict[str, Any]) -> None:
    published = {name for name, service in rendered["services"].items() if service.get("ports")}
    assert published == {"api", "temporal-ui", "mailpit"}
    for name in ("temporal-ui", "mailpit"):
        for port in rendered["services"][name]["ports"]:
            assert str(port).startswith("127.0.0.1:"), f"{name} has no sign-in; keep it on loopback: {port}"
    assert rendered["networks"]["backend"].get("internal") is True
    for name in ("postgresql", *TEMPORAL_SERVICES):
        assert list(rendered["services"][name]["networks"]) == ["backend"], name


def _condition(service: dict[str, Any], dependency: str) -> str:
    return str(service["depends_on"][dependency]["condition"])


def test_start_order_and_health_checks(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    assert "pg_isready" in " ".join(services["postgresql"]["healthcheck"]["test"])
    # temporalio/server has no Temporal CLI: its check is the frontend's port.
    assert services["temporal"]["healthcheck"]["test"] == ["CMD", "nc", "-z", "127.0.0.1", "7233"]
    assert "/health/live" in " ".join(services["api"]["healthcheck"]["test"])
    assert "/health/live" in " ".join(services["worker"]["healthcheck"]["test"])
    assert _condition(services["api"], "worker") == "service_healthy"  # ready needs a worker polling
    assert _condition(services["temporal-schema"], "postgresql") == "service_healthy"
    assert _condition(services["temporal"], "postgresql") == "service_healthy"
    assert _condition(services["temporal"], "temporal-schema") == "service_completed_successfully"
    assert _condition(services["temporal-namespace"], "temporal") == "service_healthy"
    assert _condition(services["temporal-admin-tools"], "temporal-namespace") == "service_completed_successfully"
    assert _condition(services["temporal-ui"], "temporal") == "service_healthy"
    for name in ("api", "worker"):
        assert _condition(services[name], "temporal-admin-tools") == "service_completed_successfully"
        assert _condition(services[name], "migrate") == "service_completed_successfully"
    assert _condition(services["api"], "postgresql") == "service_healthy"
    assert _condition(services["migrate"], "postgresql") == "service_healthy"


def test_the_schema_is_upgraded_once_before_api_and_workers(rendered: dict[str, Any]) -> None:
    """Production processes only check the schema (`guest-journey db upgrade` changes it)."""
    services = rendered["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["guest-journey", "db", "upgrade"]
    assert migrate["image"] == services["api"]["image"]
    assert migrate["environment"] == services["api"]["environment"]
    assert migrate["restart"] == "no", "a one-shot: restarted, it would keep the API waiting"


def test_temporal_uses_the_postgresql_service(rendered: dict[str, Any]) -> None:
    temporal = rendered["services"]["temporal"]
    assert temporal["image"].startswith("temporalio/server:")
    env = temporal["environment"]
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    assert env["POSTGRES_USER"] == "temporal"
    assert env["POSTGRES_PWD"] == REQUIRED["TEMPORAL_DB_PASSWORD"]
    assert env["BIND_ON_IP"] == "0.0.0.0", "the health check and the other containers reach the frontend"
    assert env["NUM_HISTORY_SHARDS"] == "4", "fixed when the cluster was created: changing it breaks it"
    assert rendered["services"]["postgresql"]["image"].startswith("postgres:16")
    assert any("/var/lib/postgresql/data" in str(volume) for volume in rendered["services"]["postgresql"]["volumes"])


def one_shot_script(rendered: dict[str, Any], name: str) -> str:
    """The shell a one-shot service runs (`sh -c <script>`), `$$` unescaped as compose does."""
    service = rendered["services"][name]
    assert service["entrypoint"] == ["sh", "-c"], f"{name}: entrypoint {service['entrypoint']!r}"
    command = service["command"]
    assert isinstance(command, list) and len(command) == 1, f"{name}: command must be one script"
    return str(command[0]).replace("$$", "$")


def test_the_schema_one_shot_sets_up_both_databases(rendered: dict[str, Any]) -> None:
    schema = rendered["services"]["temporal-schema"]
    assert schema["image"].startswith("temporalio/admin-tools:")
    assert schema["image"].rpartition(":")[2] == rendered["services"]["temporal"]["image"].rpartition(":")[2], (
        "the schema tools and the server must be one release"
    )
    assert schema["environment"]["SQL_PASSWORD"] == REQUIRED["TEMPORAL_DB_PASSWORD"]
    assert schema["restart"] == "no"
    script = one_shot_script(rendered, "temporal-schema")
    assert "temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 -u temporal" in script
    for step in ("create", "setup-schema -v 0.0", "update-schema -d"):
        assert step in script
    assert "/etc/temporal/schema/postgresql/v12/" in script


def fake_tool(directory: Path, name: str, body: str) -> None:
    """An executable `name` on a PATH of our own: logs its arguments, then runs `body`."""
    path = directory / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "$CALLS"\n{body}\n')
    path.chmod(0o755)


def run_script(script: str, tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], str]:
    calls = tmp_path / "calls.log"
    calls.touch()
    environment = {"PATH": f"{tmp_path}:/usr/bin:/bin", "CALLS": str(calls), **env}
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=environment, timeout=60)
    return result, calls.read_text()


@pytest.mark.parametrize("name", ["temporal-schema", "temporal-namespace"])
def test_one_shot_scripts_are_valid_sh(rendered: dict[str, Any], name: str) -> None:
    result = subprocess.run(["sh", "-n", "-c", one_shot_script(rendered, name)], capture_output=True, text=True)
    assert result.returncode == 0, f"{name}: {result.stderr}"


def test_the_schema_script_keeps_existing_databases(rendered: dict[str, Any], tmp_path: Path) -> None:
    """The postgres image made `temporal` already; a second start finds both: neither stops it."""
    fake_tool(tmp_path, "temporal-sql-tool", """
case "$*" in
  *"--db temporal create"*) echo 'pq: database "temporal" already exists' >&2; exit 1 ;;
esac""")
    result, calls = run_script(one_shot_script(rendered, "temporal-schema"), tmp_path, {})
    assert result.returncode == 0, result.stderr + result.stdout
    for database, schema in (("temporal", "temporal"), ("temporal_visibility", "visibility")):
        assert f"--db {database} create" in calls
        assert f"--db {database} setup-schema -v 0.0" in calls
        assert f"--db {database} update-schema -d /etc/temporal/schema/postgresql/v12/{schema}/versioned" in calls


def test_the_schema_script_stops_on_any_other_error(rendered: dict[str, Any], tmp_path: Path) -> None:
    fake_tool(tmp_path, "temporal-sql-tool", """
case "$*" in
  *" create"*) echo 'dial tcp postgresql:5432: connect: connection refused' >&2; exit 1 ;;
esac""")
    result, calls = run_script(one_shot_script(rendered, "temporal-schema"), tmp_path, {})
    assert result.returncode != 0
    assert "connection refused" in result.stderr
    assert "setup-schema" not in calls


@pytest.mark.parametrize("exists", [False, True])
def test_the_namespace_script_creates_or_updates_the_namespace(
    rendered: dict[str, Any], tmp_path: Path, exists: bool
) -> None:
    service = rendered["services"]["temporal-namespace"]
    assert service["image"] == rendered["services"]["temporal-admin-tools"]["image"]
    env = service["environment"]
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_NAMESPACE"] == "default"
    assert env["TEMPORAL_RETENTION"] == "720h"
    assert service["restart"] == "no"
    fake_tool(tmp_path, "temporal", f"""
case "$*" in
  *"cluster health"*) echo SERVING ;;
  *"namespace describe"*) exit {0 if exists else 1} ;;
esac""")
    result, calls = run_script(one_shot_script(rendered, "temporal-namespace"), tmp_path, env)
    assert result.returncode == 0, result.stderr + result.stdout
    verb = "update" if exists else "create"
    assert f"temporal operator namespace {verb} --address temporal:7233 --namespace default --retention 720h" in calls
    assert f"namespace {'create' if exists else 'update'}" not in calls


def test_admin_tools_register_the_search_attributes(rendered: dict[str, Any]) -> None:
    admin = rendered["services"]["temporal-admin-tools"]
    assert admin["entrypoint"] == ["sh", "/deploy/register-search-attributes.sh"]
    assert any(str(volume).endswith("/deploy/register-search-attributes.sh:ro") for volume in admin["volumes"])
    assert admin["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert admin.get("restart") == "no"


def test_mailpit_runs_only_in_the_dev_profile(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    assert services["mailpit"].get("profiles") == ["dev"], "Mailpit is for trials: `--profile dev`"
    for name, service in services.items():
        if name == "mailpit":
            continue
        assert not service.get("profiles"), f"{name} must run without a profile"
        assert "mailpit" not in (service.get("depends_on") or {}), f"{name} depends on Mailpit, absent in production"
    raw = raw_compose()["x-guest-journey-environment"]["GUEST_JOURNEY_SMTP_HOST"]
    assert REQUIRED_VALUE.fullmatch(raw), f"GUEST_JOURNEY_SMTP_HOST must be required (${{VAR:?message}}), not {raw!r}"


def test_containers_keep_their_hardening(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    for name in ("migrate", "api", "worker"):
        service = services[name]
        assert service.get("read_only") is True, f"{name}: read_only"
        assert service.get("cap_drop") == ["ALL"], f"{name}: cap_drop"
        assert "no-new-privileges:true" in service.get("security_opt", []), f"{name}: no-new-privileges"
    assert services["worker"]["stop_grace_period"] == "75s"
    for name in (*TEMPORAL_SERVICES, "temporal-ui"):
        assert services[name].get("cap_drop") == ["ALL"], f"{name}: cap_drop"
        assert "no-new-privileges:true" in services[name].get("security_opt", []), f"{name}: no-new-privileges"


# -- the search-attribute script --------------------------------------------------


def test_the_script_registers_what_the_code_uses() -> None:
    match = re.search(r'^ATTRIBUTES="([^"]*)"$', REGISTER_SCRIPT.read_text(), re.MULTILINE)
    assert match, f"no ATTRIBUTES=... line in {REGISTER_SCRIPT}"
    registered = dict(spec.split("=") for spec in match.group(1).split())
    assert registered == SEARCH_ATTRIBUTES


@pytest.mark.parametrize("script", ["register-search-attributes.sh", "postgres-init.sh"])
def test_deploy_scripts_are_valid_sh(script: str) -> None:
    path = ROOT / "deploy" / script
    assert os.access(path, os.X_OK), f"{path} is not executable"
    result = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- Dockerfile ---------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    instructions = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def test_dockerfile_pins_its_base_image() -> None:
    instructions = dockerfile_instructions()
    args = {}
    for keyword, arguments in instructions:
        if keyword == "ARG" and "=" in arguments:
            name, _, default = arguments.partition("=")
            args[name] = default
    stages: set[str] = set()
    bases = []
    for keyword, arguments in instructions:
        if keyword != "FROM":
            continue
        parts = arguments.split()
        image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0])
        if image not in stages:
            bases.append(image)
        if len(parts) == 3 and parts[1].upper() == "AS":
            stages.add(parts[2])
    assert bases, "no FROM"
    for image in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image), f"base image {image!r} is not a pinned python:3.11 slim"


def test_dockerfile_runs_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    last_from = max(index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    users = [arguments for keyword, arguments in instructions[last_from:] if keyword == "USER"]
    assert users, "the final stage has no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"USER {users[-1]} is root"


def test_dockerfile_serves_the_api_by_default() -> None:
    instructions = dict(dockerfile_instructions())
    assert instructions["CMD"] == '["guest-journey", "api"]'
    assert "/health/live" in instructions["HEALTHCHECK"]  # liveness: no dependency restarts the API
    envs = " ".join(arguments for keyword, arguments in dockerfile_instructions() if keyword == "ENV")
    assert "GUEST_JOURNEY_API_HOST=0.0.0.0" in envs


def test_the_build_context_leaves_secrets_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".env", ".git", ".guest-journey"):
        assert pattern in ignored, f".dockerignore does not exclude {pattern}"
