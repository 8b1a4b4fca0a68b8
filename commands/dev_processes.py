"""The processes `guest-journey dev` runs beside the Temporal dev server: the API and the
worker, each an OS process of its own (`guest-journey api`, `guest-journey worker`), so
that the worker's garbage collections and workflow tasks do not stall the API's answers,
and the two use both cores.

Each child runs in its own process group, so a terminal's Ctrl-C reaches only `dev`,
which stops them all (SIGTERM, then SIGKILL after `STOP_TIMEOUT`; a second Ctrl-C kills
at once), and each is told by the kernel to stop if `dev` dies without stopping it (no
orphans). Their output is merged into `dev`'s, each line prefixed with the child's name.
One child ending on its own stops the others: `dev` then exits 1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from commands.devserver import parent_death_signal
from guest_journey.logs import console_line
from guest_journey.settings import Settings

logger = logging.getLogger("commands.dev")
STOP_TIMEOUT = 20.0
LONGEST_LINE = 1 << 20  # bytes of one output line before it is cut


@dataclass(frozen=True)
class Child:
    """A process `dev` runs: its name (its lines' prefix) and its command line."""

    name: str
    argv: tuple[str, ...]


def cli(command: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "commands.cli", command)


def dev_children(settings: Settings) -> list[Child]:
    """What `dev` runs once Temporal answers and the schema is current; one more process is one more line."""
    children = [
        Child("api", cli("api")),
        Child("worker", (sys.executable, "-m", "worker")),  # what `guest-journey worker` runs
    ]
    if settings.mail_in_port is not None:
        children.append(Child("mail-in", cli("mail-in")))  # guests' e-mail replies by SMTP (commands.mail_in)
    return children


class ChildProcess:
    def __init__(self, child: Child, out: TextIO, width: int) -> None:
        self.child = child
        self.out = out
        self.prefix = f"{child.name:<{width}} | "
        self.readable = out.isatty()  # the children log JSON lines (their stderr is a pipe): shown as readable lines
        self.process: asyncio.subprocess.Process | None = None
        self._copying: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.child.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,  # a terminal's Ctrl-C goes to `dev` alone, which stops the children in order
            preexec_fn=parent_death_signal(),
            limit=LONGEST_LINE,
        )
        self._copying = asyncio.create_task(self._copy_output())

    async def _copy_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        stream = self.process.stdout
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line over LONGEST_LINE: what was read of it
                line = await stream.read(LONGEST_LINE)
            if not line:
                return
            text = line.decode(errors="replace").rstrip("\r\n")
            if self.readable:
                text = _readable(text)
            self.out.write("".join(self.prefix + part + "\n" for part in text.split("\n")))
            self.out.flush()

    async def wait(self) -> int:
        assert self.process is not None
        status = await self.process.wait()
        if self._copying is not None:
            await self._copying
        return status

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.returncode is None:
            try:
                self.process.send_signal(sig)
            except ProcessLookupError:
                pass

    async def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then SIGKILL if it has not exited after `timeout` seconds; its exit status."""
        self.signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.wait(), timeout)
        except TimeoutError:
            logger.warning("the %s did not stop within %.0f s: killing it", self.child.name, timeout)
            self.signal(signal.SIGKILL)
            return await self.wait()


def _readable(text: str) -> str:
    try:
        entry = json.loads(text)
        return console_line(entry) if isinstance(entry, dict) else text
    except (ValueError, KeyError, TypeError):
        return text


def _stopped_cleanly(status: int) -> bool:
    return status in (0, -signal.SIGTERM, -signal.SIGINT)


async def run_children(
    children: Sequence[Child], stop: asyncio.Event, kill: asyncio.Event, out: TextIO | None = None
) -> int:
    """Run the children until `stop` is set or one ends; then stop them all (at once: SIGKILL
    when `kill` is set). 0 when every child stopped cleanly on request, else 1."""
    width = max(len(child.name) for child in children)
    running = [ChildProcess(child, out or sys.stderr, width) for child in children]
    waits: dict[asyncio.Task[int], ChildProcess] = {}
    killing = asyncio.create_task(_kill_when(kill, running))
    try:
        for process in running:
            await process.start()
            waits[asyncio.create_task(process.wait())] = process
            logger.info("started the %s (pid %s)", process.child.name, process.pid)
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopping, *waits], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        ended = [waits[task] for task in done if task in waits]
        for process in ended:
            logger.error("the %s stopped on its own (status %s): stopping the others",
                         process.child.name, process.process.returncode if process.process else None)
    finally:
        statuses = await asyncio.gather(*(process.stop() for process in running if process.process is not None))
        killing.cancel()
        for task in waits:
            task.cancel()
    for process, status in zip(running, statuses, strict=False):
        if not _stopped_cleanly(status):
            logger.error("the %s exited with status %s", process.child.name, status)
    return 0 if not ended and all(_stopped_cleanly(status) for status in statuses) else 1


async def _kill_when(kill: asyncio.Event, running: Sequence[ChildProcess]) -> None:
    await kill.wait()
    for process in running:
        process.signal(signal.SIGKILL)
