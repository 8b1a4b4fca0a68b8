"""The service's database busy: another connection holds the message table for a while.

On SQLite, a connection of its own takes the database's write lock
(`BEGIN IMMEDIATE`) and writes a row, as another writer would: every other
writer waits for it. On PostgreSQL, a transaction takes `LOCK TABLE message IN EXCLUSIVE
MODE`: reads go on, every write to the table waits.

A service waits for such a lock: SQLite for its busy timeout (30 s),
PostgreSQL for as long as it takes. `with_lock_timeout(url, ...)` gives the
service's PostgreSQL connections a `lock_timeout`, as many deployments set one,
so that a lock held longer makes its writes fail instead: the hand-over record
then meets a database error, not only a wait.

`BusyDatabase.hold_if_due()` is meant to run at the moment a provider has just
taken a message, before it answers: the sender's record of the hand-over then
meets the lock. It starts an episode of `hold` seconds when one is due (at most
`episodes`, a random pause between them); `during(moments)` counts the
moments (e.g. the provider's answers) that fell in an episode.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import psycopg


def with_lock_timeout(database_url: str, lock_timeout: timedelta) -> str:
    """The PostgreSQL URL with `lock_timeout` added to its connections' options; SQLite's as it is."""
    if database_url.startswith("sqlite"):
        return database_url
    parts = urlsplit(database_url)
    query = parse_qs(parts.query)
    options = " ".join([*query.get("options", []), f"-c lock_timeout={int(lock_timeout.total_seconds() * 1000)}"])
    query["options"] = [options]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True, quote_via=quote)))


class BusyDatabase:
    def __init__(
        self, database_url: str, *, hold: float, episodes: int, pause: tuple[float, float], rng: random.Random
    ) -> None:
        self.database_url = database_url
        self.hold = hold
        self.episodes_left = episodes
        self.pause = pause
        self.rng = rng
        self.episodes: list[tuple[float, float]] = []  # (taken, released), time.monotonic()
        self._mutex = threading.Lock()
        self._connection: Any = None
        self._next_at = 0.0
        self._timer: threading.Timer | None = None

    def hold_if_due(self) -> None:
        with self._mutex:
            if self._connection is None and self.episodes_left > 0 and time.monotonic() >= self._next_at:
                self._connection = self._take()
                self.episodes_left -= 1
                self.episodes.append((time.monotonic(), 0.0))
                self._timer = threading.Timer(self.hold, self.release)
                self._timer.start()

    def during(self, moments: list[float]) -> int:
        """How many of `moments` (`time.monotonic()`) fell while the lock was held."""
        return sum(any(taken <= moment <= released for taken, released in self.episodes) for moment in moments)

    def release(self) -> None:
        with self._mutex:
            if self._connection is None:
                return
            try:
                if self._sqlite:
                    self._connection.execute("COMMIT")
                else:
                    self._connection.commit()
            finally:
                self._connection.close()
                self._connection = None
            taken, _ = self.episodes[-1]
            self.episodes[-1] = (taken, time.monotonic())
            self._next_at = time.monotonic() + self.rng.uniform(*self.pause)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.release()

    @property
    def _sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def _take(self) -> Any:
        if self._sqlite:
            path = self.database_url.split("///", 1)[1]
            connection = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
            connection.execute("BEGIN IMMEDIATE")
            # A write of its own, as another writer's: the write-ahead log moves on.
            connection.execute(
                "UPDATE message SET updated_at = updated_at WHERE rowid = (SELECT max(rowid) FROM message)"
            )
            return connection
        url = self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        connection = psycopg.connect(url, connect_timeout=10)
        connection.execute("LOCK TABLE message IN EXCLUSIVE MODE")
        return connection
