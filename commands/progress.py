"""A long command's progress: a bar with rate and ETA on a terminal, plain lines elsewhere.

On a terminal the bar is redrawn in place (at most ten times a second); in a log or a
pipe a plain line is written every `every` seconds, and one at the end, so the output
stays readable there."""

from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 30


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def progress_text(done: int, total: int | None, seconds: float, *, failed: int = 0, bar: bool) -> str:
    """`[#####-----] 1,200/5,000 24% 310/s ETA 0:12, 3 failed` (no bar, or no total: fewer parts)."""
    rate = done / seconds if seconds > 0 else 0.0
    parts = []
    if total:
        share = min(done / total, 1.0)
        if bar:
            filled = round(share * BAR_WIDTH)
            parts.append("[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]")
        parts.append(f"{done:,}/{total:,} {share:.0%}")
    else:
        parts.append(f"{done:,}")
    parts.append(f"{rate:,.0f}/s")
    if total and rate > 0:
        parts.append(f"ETA {duration((total - done) / rate)}")
    text = " ".join(parts)
    return f"{text}, {failed:,} failed" if failed else text


class ProgressDisplay:
    def __init__(self, stream: TextIO, total: int | None, *, every: float = 5.0) -> None:
        self.stream = stream
        self.total = total
        self.tty = stream.isatty()
        self.every = 0.1 if self.tty else every
        self.started = time.monotonic()
        self.shown_at = self.started

    def update(self, done: int, failed: int = 0) -> None:
        now = time.monotonic()
        if now - self.shown_at < self.every:
            return
        self.shown_at = now
        self._show(done, failed)

    def finish(self, done: int, failed: int = 0) -> None:
        self._show(done, failed)
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()

    def _show(self, done: int, failed: int) -> None:
        text = progress_text(done, self.total, time.monotonic() - self.started, failed=failed, bar=self.tty)
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
