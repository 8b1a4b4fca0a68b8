"""`guest-journey dev` end to end, as a user runs it: the Temporal dev server, the API
and the worker, each its own process under one command, their logs merged; Ctrl-C or
SIGTERM stops them all, leaving no process behind; a re-run resumes journeys."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from guest_journey.settings import Settings

START_TIMEOUT = 90.0  # three processes start on a shared machine
STOP_TIMEOUT = 20.0


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _pids_using(marker: str) -> list[int]:
    """Processes whose command line mentions `marker` (this test's own data dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(entry.name))
    return pids


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _descendants(pid: int) -> dict[int, str]:
    """Every living process below `pid`, with its command line."""
    parents = {int(entry.name): _parent_of(int(entry.name)) for entry in Path("/proc").iterdir() if entry.name.isdigit()}
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = _cmdline(child)
                frontier.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/cmdline")).read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pids: Iterator[int] | list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def _children_by_role(dev_pid: int) -> dict[str, int]:
    """The processes of a running `dev`: the Temporal dev server, the API and the worker."""
    roles = {}
    for pid, cmdline in _descendants(dev_pid).items():
        if "start-dev" in cmdline:
            roles["temporal"] = pid
        elif cmdline.endswith("commands.cli api "):
            roles["api"] = pid
        elif cmdline.endswith("-m worker "):
            roles["worker"] = pid
    return roles


@dataclass
class DevRun:
    tmp_path: Path
    env: dict[str, str]
    api_port: int
    temporal_port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    seen_pids: set[int] = field(default_factory=set)

    def roles(self, process: subprocess.Popen[bytes]) -> dict[str, int]:
        """The running `dev`'s processes (remembered, so that none is left behind at the end)."""
        found = _children_by_role(process.pid)
        self.seen_pids.update(found.values())
        return found

    @property
    def data_dir(self) -> Path:
        return self.tmp_path / "data"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.tmp_path / f"dev-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", "dev"],
            cwd=self.tmp_path,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes.append(process)
        return process

    def log(self, process: subprocess.Popen[bytes]) -> str:
        """Everything `dev` wrote (its children's lines among them)."""
        return (self.tmp_path / f"dev-{self.processes.index(process)}.log").read_text(errors="replace")

    def output(self, process: subprocess.Popen[bytes]) -> str:
        text = self.log(process)
        temporal_log = self.data_dir / "temporal.log"
        if temporal_log.exists():
            text += "\n--- temporal.log (tail) ---\n" + "\n".join(
                temporal_log.read_text(errors="replace").splitlines()[-20:]
            )
        return text[-6000:]

    async def wait_healthy(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer"
        async with httpx.AsyncClient(base_url=self.api_url, timeout=5) as http:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    pytest.fail(f"dev exited early ({process.returncode}):\n{self.output(process)}")
                try:
                    response = await http.get("/health/otel")
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text}"
                except httpx.TransportError as error:
                    last = repr(error)
                await asyncio.sleep(0.3)
        pytest.fail(f"the API did not become healthy in {START_TIMEOUT} s ({last}):\n{self.output(process)}")

    async def interrupt(self, process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGINT) -> int:
        process.send_signal(sig)
        return await self.exited(process, f"of {sig.name}")

    async def exited(self, process: subprocess.Popen[bytes], why: str = "") -> int:
        try:
            return await asyncio.to_thread(process.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"dev did not stop within {STOP_TIMEOUT} s {why}:\n{self.output(process)}")

    def kill_leftovers(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        for pid in [*_pids_using(str(self.data_dir)), *_alive(self.seen_pids)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def dev_run(tmp_path: Path, settings: Settings) -> Iterator[DevRun]:
    temporal_port, ui_port, api_port = _free_ports(3)
    policy = tmp_path / "policy.yaml"
    policy.write_text("quiet_hours: null\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("GUEST_JOURNEY_")}
    env.update(
        GUEST_JOURNEY_DATA_DIR=str(tmp_path / "data"),
        GUEST_JOURNEY_TEMPORAL_ADDRESS=f"127.0.0.1:{temporal_port}",
        GUEST_JOURNEY_TEMPORAL_UI_PORT=str(ui_port),
        GUEST_JOURNEY_API_HOST="127.0.0.1",
        GUEST_JOURNEY_API_PORT=str(api_port),
        GUEST_JOURNEY_PUBLIC_BASE_URL=f"http://127.0.0.1:{api_port}",
        GUEST_JOURNEY_POLICY_FILE=str(policy),
    )
    if settings.database_url is not None:  # the test's PostgreSQL schema (`--database`)
        env["GUEST_JOURNEY_DATABASE_URL"] = settings.database_url
    run = DevRun(tmp_path=tmp_path, env=env, api_port=api_port, temporal_port=temporal_port)
    try:
        yield run
    finally:
        run.kill_leftovers()


def _reservation_body() -> dict[str, Any]:
    hotel_time = ZoneInfo("America/Sao_Paulo")
    arrival = (datetime.now(UTC) + timedelta(days=2)).astimezone(hotel_time).replace(microsecond=0)
    return {
        "hotel_id": "hotel-sp",
        "guest": {"name": "Ana Souza", "email": "ana@example.com", "language": "pt-BR"},
        "arrival": arrival.isoformat(),
        "departure": (arrival + timedelta(days=3)).isoformat(),
    }


def _step(journey: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((step for step in journey["steps"] if step["key"] == key), None)


async def _wait_for_invitation(http: httpx.AsyncClient, reservation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    journey: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await http.get(f"/guest-experience/{reservation_id}")
        assert response.status_code == 200, response.text
        journey = response.json()
        step = _step(journey, "checkin_invitation")
        if step is not None and step["status"] == "done":
            return journey
        await asyncio.sleep(0.3)
    pytest.fail(f"the check-in invitation was not sent within 20 s: {journey}")


async def _wait_listed(address: str, workflow_id: str) -> None:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    deadline = time.monotonic() + 15
    found: list[str] = []
    while time.monotonic() < deadline:
        found = [
            execution.id async for execution in client.list_workflows('JourneyStage="pre_arrival"')
        ]
        if workflow_id in found:
            return
        await asyncio.sleep(0.3)
    pytest.fail(f'{workflow_id} not listed by JourneyStage="pre_arrival" (found {found})')


@pytest.mark.timeout(240)
async def test_dev_runs_everything_stops_on_sigint_and_resumes(dev_run: DevRun) -> None:
    reservation_id = "R-DEV-1"
    first = dev_run.start()
    await dev_run.wait_healthy(first)
    processes = dev_run.roles(first)
    assert set(processes) == {"temporal", "api", "worker"}, _descendants(first.pid)
    assert len({first.pid, *processes.values()}) == 4  # the API and the worker: processes of their own
    async with httpx.AsyncClient(base_url=dev_run.api_url, timeout=10) as http:
        response = await http.put(f"/reservations/{reservation_id}", json=_reservation_body())
        assert response.status_code == 201, response.text
        assert response.json() == {
            "reservation_id": reservation_id,
            "workflow_id": f"journey-{reservation_id}",
            "stage": "pre_arrival",
        }
        journey = await _wait_for_invitation(http, reservation_id)
        assert journey["stage"] == "pre_arrival"
    await _wait_listed(f"127.0.0.1:{dev_run.temporal_port}", f"journey-{reservation_id}")
    assert (dev_run.data_dir / "temporal.sqlite").exists()

    assert await dev_run.interrupt(first) == 0, dev_run.output(first)
    assert not _pids_using(str(dev_run.data_dir)), "a process of the first run is still alive"
    assert not _alive(list(processes.values())), f"left behind: {_alive(list(processes.values()))}"
    log = dev_run.log(first)
    assert "\napi    | " in log and "\nworker | " in log, log  # the children's logs, merged and prefixed

    second = dev_run.start()
    await dev_run.wait_healthy(second)
    async with httpx.AsyncClient(base_url=dev_run.api_url, timeout=10) as http:
        response = await http.get(f"/guest-experience/{reservation_id}")
        assert response.status_code == 200, response.text
        resumed = response.json()
    assert resumed["stage"] == "pre_arrival"
    assert _step(resumed, "checkin_invitation")["status"] == "done"
    client = await Client.connect(
        f"127.0.0.1:{dev_run.temporal_port}", data_converter=pydantic_data_converter
    )
    description = await client.get_workflow_handle(f"journey-{reservation_id}").describe()
    assert description.status is not None and description.status.name == "RUNNING"
    assert await dev_run.interrupt(second) == 0, dev_run.output(second)


def test_dev_refuses_a_taken_api_port(dev_run: DevRun) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", dev_run.api_port))
        taken.listen()
        process = dev_run.start()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"dev kept running with its API port taken:\n{dev_run.output(process)}")
    output = dev_run.output(process)
    assert process.returncode == 2, output
    assert str(dev_run.api_port) in output
    assert "GUEST_JOURNEY_API_PORT" in output
    assert not (dev_run.data_dir / "temporal.sqlite").exists()


async def _started(dev_run: DevRun) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    process = dev_run.start()
    await dev_run.wait_healthy(process)
    roles = dev_run.roles(process)
    assert set(roles) == {"temporal", "api", "worker"}, _descendants(process.pid)
    return process, roles


@pytest.mark.timeout(240)
async def test_sigterm_stops_every_process_with_status_0(dev_run: DevRun) -> None:
    process, roles = await _started(dev_run)
    assert await dev_run.interrupt(process, signal.SIGTERM) == 0, dev_run.output(process)
    assert not _alive(list(roles.values())), dev_run.output(process)


@pytest.mark.timeout(240)
async def test_a_child_that_dies_stops_the_others_and_dev_exits_1(dev_run: DevRun) -> None:
    process, roles = await _started(dev_run)
    os.kill(roles["worker"], signal.SIGKILL)
    assert await dev_run.exited(process, "after its worker died") == 1
    output = dev_run.output(process)
    assert "the worker stopped on its own" in dev_run.log(process), output
    assert not _alive(list(roles.values())), output


@pytest.mark.timeout(240)
async def test_a_killed_dev_leaves_no_orphans(dev_run: DevRun) -> None:
    process, roles = await _started(dev_run)
    process.kill()
    process.wait()
    left = await _still_alive_after(list(roles.values()), STOP_TIMEOUT)
    assert not left, f"orphans: {[_cmdline(pid) for pid in left]}"


async def _still_alive_after(pids: list[int], timeout: float) -> list[int]:
    """The processes still alive once `timeout` has passed (or none, as soon as all have ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pids):
            return []
        await asyncio.sleep(0.2)
    return _alive(pids)
