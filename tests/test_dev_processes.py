"""How `guest-journey dev` runs its children (`commands.dev_processes`), on small stand-in
processes: their lines merged with a prefix (readable at a terminal), all stopped on
request with status 0, and one that ends on its own stopping the others with status 1.
`tests/test_dev_command.py` runs the real `dev`."""

from __future__ import annotations

import asyncio
import io
import sys

from commands.dev_processes import Child, run_children

LOG_LINE = ('{"time": "2027-01-10T12:00:00+00:00", "level": "info", "logger": "demo", '
            '"message": "hello", "reservation_id": "R1"}')


class Screen(io.StringIO):
    """A terminal that says when a text has been written to it."""

    def __init__(self, *, tty: bool) -> None:
        super().__init__()
        self.tty = tty
        self.written = asyncio.Event()

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)


def talker(line: str) -> tuple[str, ...]:
    return (sys.executable, "-c", f"import time; print({line!r}, flush=True); time.sleep(120)")


async def test_lines_are_merged_with_a_prefix_and_readable_at_a_terminal() -> None:
    screen, stop, kill = Screen(tty=True), asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(run_children(
        [Child("api", talker(LOG_LINE)), Child("worker", talker("plain words"))], stop, kill, screen))
    async with asyncio.timeout(30):
        while "worker | plain words" not in screen.getvalue() or "api    |" not in screen.getvalue():
            screen.written.clear()
            await screen.written.wait()
    stop.set()
    assert await asyncio.wait_for(running, 30) == 0
    assert "api    | 12:00:00 info    demo: hello  reservation_id=R1\n" in screen.getvalue()


async def test_a_child_that_ends_on_its_own_stops_the_others_and_the_answer_is_1() -> None:
    screen, stop, kill = Screen(tty=False), asyncio.Event(), asyncio.Event()
    quitter = (sys.executable, "-c", "print('giving up', flush=True); raise SystemExit(3)")
    status = await asyncio.wait_for(
        run_children([Child("api", talker("up")), Child("mail", quitter)], stop, kill, screen), 60)
    assert status == 1
    assert "mail | giving up\n" in screen.getvalue()
