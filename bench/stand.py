"""The test stand: the service under test and the baselines' worker, each a
process of its own, and how load reaches them.

The service is the embedded default itself: `guest-journey dev` (the Temporal
dev server on SQLite, the worker and the API in one process) in a temp dir,
on free loopback ports, with a policy without quiet hours and the API's rate
limit off (one caller makes all the load here). The baselines' workflow
(`bench.bare`) runs in a bare worker process against the same dev server,
with the same workflow cache size. The process that makes the load is
neither of them. Both children use Python's bytecode cache
(`bench.common.use_bytecode_cache`).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from bench.bare import READY, BareJourney
from bench.common import PYCACHE, REPO, Timing, reservation_body, timed
from guest_journey.settings import Settings
from guest_journey.temporal import connect_temporal

HOST = "127.0.0.1"
CACHE_SIZE = 1_000  # temporalio's default `max_cached_workflows`, which worker.py keeps
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
CONNECTIONS = 64
IDLE_WINDOW = 0.5  # seconds


# -- processes ----------------------------------------------------------------------


@dataclass
class Process:
    """A child process of the bench, its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_file: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def check(self) -> None:
        if self.popen.poll() is not None:
            tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"{self.name} exited with status {self.popen.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def spawn(name: str, command: list[str], log_file: Path, env: dict[str, str]) -> Process:
    with log_file.open("wb") as log:
        popen = subprocess.Popen(
            command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    return Process(name, popen, log_file)


def child_environment() -> dict[str, str]:
    """This process's environment without the service's settings or telemetry
    export, with Python's bytecode cache on."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GUEST_JOURNEY_", "OTEL_")) and key != "PYTHONDONTWRITEBYTECODE"
    }
    environment["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return environment


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def rss_mib(pid: int) -> float:
    """The resident memory of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


class CpuMeter:
    """CPU seconds used by named processes between two readings."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def used(self) -> dict[str, float]:
        """Seconds used since the last call (or since built)."""
        now = self._read()
        used = {name: now[name] - self.start[name] for name in now}
        self.start = now
        return used


async def until_idle(pid: int, *, below: float = 0.05, timeout: float = 600.0) -> None:
    """Wait until the process uses less than `below` of a core over `IDLE_WINDOW`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(IDLE_WINDOW)
        if cpu_seconds(pid) - before < below * IDLE_WINDOW:
            return
    raise TimeoutError(f"process {pid} was still busy after {timeout:.0f} s")


# -- the service and the bare worker ------------------------------------------------


@dataclass
class Service:
    """The embedded default under test, and where to reach it."""

    process: Process
    data_dir: Path
    api_url: str
    temporal_address: str

    @property
    def temporal_pid(self) -> int:
        return self._child("start-dev")

    @property
    def api_pid(self) -> int:
        return self._child("commands.cli api")

    @property
    def worker_pid(self) -> int:
        """`guest-journey dev` runs the API and the worker as processes of their own."""
        return self._child("-m worker")

    def _child(self, marker: str) -> int:
        for pid in children(self.process.pid):
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                return pid
        raise RuntimeError(f"guest-journey dev has no child process running {marker!r}")


@asynccontextmanager
async def embedded_service() -> AsyncIterator[Service]:
    """`guest-journey dev` in a temp dir; stopped, and its data removed, at the end."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        data_dir = Path(tmp)
        policy_file = data_dir / "policy.yaml"
        policy_file.write_text("quiet_hours: null\n")
        api_port = free_port()
        api_url = f"http://{HOST}:{api_port}"
        temporal_address = f"{HOST}:{free_port()}"
        env = child_environment() | {
            "GUEST_JOURNEY_DATA_DIR": str(data_dir),
            "GUEST_JOURNEY_TEMPORAL_ADDRESS": temporal_address,
            "GUEST_JOURNEY_TEMPORAL_UI_PORT": str(free_port()),
            "GUEST_JOURNEY_API_HOST": HOST,
            "GUEST_JOURNEY_API_PORT": str(api_port),
            "GUEST_JOURNEY_PUBLIC_BASE_URL": api_url,
            "GUEST_JOURNEY_POLICY_FILE": str(policy_file),
            "GUEST_JOURNEY_SECRET_KEY": "bench-secret-key-bench-secret-key",
            "GUEST_JOURNEY_RATE_LIMIT_API_KEY_PER_MINUTE": "0",
        }
        process = spawn("guest-journey dev", [sys.executable, "-m", "commands.cli", "dev"],
                        data_dir / "service.log", env)
        try:
            service = Service(process, data_dir, api_url, temporal_address)
            await _until_api_answers(service)
            yield service
        finally:
            process.stop()


async def _until_api_answers(service: Service) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    async with httpx.AsyncClient(base_url=service.api_url, timeout=5.0) as http:
        while time.monotonic() < deadline:
            service.process.check()
            try:
                if (await http.get("/guest-experience/journey")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)
    raise TimeoutError(f"the API did not answer within {READY_TIMEOUT:.0f} s")


@asynccontextmanager
async def bare_worker(service: Service, task_queue: str) -> AsyncIterator[Process]:
    """A worker of `BareJourney` on its own task queue, in its own process."""
    command = [
        sys.executable, "-m", "bench.bare",
        "--address", service.temporal_address,
        "--task-queue", task_queue,
        "--cache", str(CACHE_SIZE),
    ]
    process = spawn("the bare worker", command, service.data_dir / f"{task_queue}.log",
                    child_environment())
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while READY not in process.log_file.read_text(errors="replace"):
            process.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bare worker did not poll within {READY_TIMEOUT:.0f} s")
            await asyncio.sleep(0.1)
        yield process
    finally:
        process.stop()


@dataclass
class Stand:
    """The service and the bare worker, running, with a Temporal client built
    as the service builds its own and an HTTP client for the API."""

    service: Service
    bare: Process
    bare_queue: str
    client: Client
    http: httpx.AsyncClient

    def cpu_meter(self) -> CpuMeter:
        """CPU time of every process of the stand, and of this one."""
        return CpuMeter({
            "load generator": os.getpid(),
            "Temporal dev server": self.service.temporal_pid,
            "bare worker": self.bare.pid,
            "API": self.service.api_pid,
            "worker": self.service.worker_pid,
        })

    def new_http(self) -> httpx.AsyncClient:
        """An HTTP client with no connection yet: none that the server may be closing
        (uvicorn closes a connection idle for 5 s)."""
        return _http_client(self.service.api_url)

    async def until_idle(self) -> None:
        """Both workers idle: every workflow task and activity done."""
        await until_idle(self.bare.pid)
        await until_idle(self.service.worker_pid)
        await until_idle(self.service.api_pid)


@asynccontextmanager
async def start_stand() -> AsyncIterator[Stand]:
    async with embedded_service() as service:
        client = await connect_temporal(
            Settings(temporal_address=service.temporal_address, secret_key="bench")
        )
        queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
        async with bare_worker(service, queue) as bare, _http_client(service.api_url) as http:
            yield Stand(service, bare, queue, client, http)


def _http_client(api_url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    return httpx.AsyncClient(base_url=api_url, limits=limits, timeout=60.0)


# -- many journeys and bare workflows at a time -------------------------------------


def new_ids(prefix: str, count: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"{prefix}{run}{index:07d}" for index in range(count)]


async def put_journeys(
    http: httpx.AsyncClient, reservation_ids: list[str], concurrency: int, *, label: str = ""
) -> Timing:
    """`PUT /reservations/{id}` of a new reservation for each id; anything but 201 is an error."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    bodies = [reservation_body(rng, now) for _ in reservation_ids]

    async def put(index: int) -> None:
        response = await http.put(f"/reservations/{reservation_ids[index]}", json=bodies[index])
        if response.status_code != 201:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")

    return await timed(label, len(reservation_ids), concurrency, put)


async def start_bare(
    stand: Stand, workflow_ids: list[str], concurrency: int, *, with_update: bool, label: str = ""
) -> Timing:
    """Start a `BareJourney` per id: `start_workflow`, or update-with-start (which,
    as a PUT does, returns once the worker has run the first workflow task)."""

    async def start(index: int) -> None:
        workflow_id = workflow_ids[index]
        if not with_update:
            await stand.client.start_workflow(BareJourney.run, id=workflow_id, task_queue=stand.bare_queue)
            return
        operation = WithStartWorkflowOperation(
            BareJourney.run, id=workflow_id, task_queue=stand.bare_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        await stand.client.execute_update_with_start_workflow(
            BareJourney.touch, "hello", start_workflow_operation=operation
        )

    return await timed(label, len(workflow_ids), concurrency, start)


@dataclass
class Population:
    """Journeys and bare workflows alive at once, and how they were started."""

    journey_ids: list[str]
    bare_ids: list[str]
    journeys: Timing
    bare: Timing


async def populate(stand: Stand, count: int, concurrency: int = 32) -> Population:
    """`count` journeys (PUT) and `count` bare workflows, started and settled."""
    bare_ids, journey_ids = new_ids("bare", count), new_ids("J", count)
    bare = await start_bare(stand, bare_ids, concurrency, with_update=False, label="bare: start_workflow")
    journeys = await put_journeys(stand.http, journey_ids, concurrency, label="journeys: PUT")
    await stand.until_idle()
    return Population(journey_ids, bare_ids, journeys, bare)
