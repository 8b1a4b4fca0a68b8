"""Per-journey data keys: what `guest_journey.payload_codec` encrypts a journey's
Temporal payloads with, and what `gdpr erase` destroys (crypto-shredding).

A journey (a workflow id `journey-…`) gets a random 256-bit AES-GCM key the
first time one of its payloads is encoded; every payload names its key by
`key_id`. Erasing a guest sets the key of every run of their journey to NULL
and stamps `erased_at`: the row stays as a tombstone, so a payload that names
it is refused with the journey it belonged to, and every copy of the history
(Temporal's database, its backups, an exported history) is unreadable for good.

Keys are cached in memory for `GUEST_JOURNEY_DATA_KEY_CACHE_SECONDS` (30 s by
default, at most 300), so an erase reaches the API's and worker's codecs within
that time; the `gdpr erase` command reads keys from the database only. Two processes that encode a new journey's first payload at
the same moment may each make a key: both rows belong to the journey, and an
erase destroys both.

The API and the worker give `JourneyKeys` an engine of its own: the codec runs
inside Temporal calls that a request handler makes while it holds one of the
app's pooled connections, and with every connection so held the codec would
wait for one until the pool's timeout.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Column, LargeBinary, update
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.database import SessionFactory, UTCDateTime, utcnow

KEY_BYTES = 32
KEY_CACHE_SECONDS = 30.0
"""How long a process keeps a key in memory by default: at most this long after
an erase, another process could still encrypt or decrypt with the destroyed key."""


class JourneyDataKey(SQLModel, table=True):
    __tablename__ = "journey_data_key"

    key_id: str = Field(primary_key=True, max_length=32)
    workflow_id: str = Field(index=True, max_length=255)
    key: bytes | None = Field(default=None, sa_column=Column(LargeBinary(), nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    erased_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class JourneyKeyErased(LookupError):
    """A payload of a journey whose key an erase destroyed: it cannot be read any more."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(
            f"the data key of journey {workflow_id!r} was destroyed by a GDPR erase: its payloads cannot be decoded"
        )
        self.workflow_id = workflow_id


class UnknownJourneyKey(LookupError):
    """A payload that names a key this service's database does not hold (another database's)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no data key {key_id!r} in this service's database: the payload cannot be decoded")
        self.key_id = key_id


async def destroy_journey_keys(*, session: AsyncSession, workflow_id: str) -> int:
    """Destroy every data key of the journey (not committed: the caller's transaction);
    answers how many keys were destroyed (0 when already erased)."""
    result = await session.exec(
        update(JourneyDataKey)
        .where(col(JourneyDataKey.workflow_id) == workflow_id, col(JourneyDataKey.key).is_not(None))
        .values(key=None, erased_at=utcnow())
    )
    return int(result.rowcount or 0)


@dataclass(frozen=True)
class DataKey:
    key_id: str
    workflow_id: str
    cipher: AESGCM


class JourneyKeys:
    """The keys of journeys, read from (and made in) the database, cached for `ttl` seconds."""

    def __init__(
        self, sessions: SessionFactory, *, ttl: float = KEY_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._clock = clock
        self._by_journey: dict[str, tuple[float, DataKey]] = {}
        self._by_id: dict[str, tuple[float, DataKey]] = {}
        self._making: dict[str, asyncio.Lock] = {}  # one key made at a time per journey

    async def for_encoding(self, workflow_id: str) -> DataKey:
        """The journey's current key, made if it has none."""
        cached = self._cached(self._by_journey, workflow_id)
        if cached is not None:
            return cached
        lock = self._making.setdefault(workflow_id, asyncio.Lock())
        try:
            async with lock:
                return await self._find_or_make(workflow_id)
        finally:
            if not lock.locked() and self._making.get(workflow_id) is lock:
                del self._making[workflow_id]

    async def _find_or_make(self, workflow_id: str) -> DataKey:
        cached = self._cached(self._by_journey, workflow_id)
        if cached is not None:
            return cached
        async with self._sessions() as session:
            found = (
                await session.exec(
                    select(JourneyDataKey)
                    .where(JourneyDataKey.workflow_id == workflow_id, col(JourneyDataKey.key).is_not(None))
                    .order_by(col(JourneyDataKey.created_at).desc())
                    .limit(1)
                )
            ).first()
            if found is None:
                found = JourneyDataKey(
                    key_id=uuid.uuid4().hex, workflow_id=workflow_id, key=os.urandom(KEY_BYTES),
                    created_at=utcnow(),
                )
                session.add(found)
                await session.commit()
            assert found.key is not None
            key = DataKey(found.key_id, workflow_id, AESGCM(found.key))
        self._remember(key)
        return key

    async def for_decoding(self, key_id: str) -> DataKey:
        """The key a payload names; raises `JourneyKeyErased` or `UnknownJourneyKey`."""
        cached = self._cached(self._by_id, key_id)
        if cached is not None:
            return cached
        async with self._sessions() as session:
            found = await session.get(JourneyDataKey, key_id)
        if found is None:
            raise UnknownJourneyKey(key_id)
        if found.key is None:
            raise JourneyKeyErased(found.workflow_id)
        key = DataKey(key_id, found.workflow_id, AESGCM(found.key))
        self._remember(key)
        return key

    def _cached(self, cache: dict[str, tuple[float, DataKey]], name: str) -> DataKey | None:
        entry = cache.get(name)
        if entry is None:
            return None
        expires, key = entry
        if expires <= self._clock():
            cache.pop(name, None)
            return None
        return key

    def _remember(self, key: DataKey) -> None:
        """Cache the key, and let go of every key whose time is up. The ttl is the same
        for all, so each cache is kept in the order its keys expire (a key cached again
        moves to the end) and the expired ones are at its front: the caches hold the
        keys of the last `ttl` seconds, not of every journey the process has seen."""
        now = self._clock()
        expires = now + self._ttl
        for cache, name in ((self._by_journey, key.workflow_id), (self._by_id, key.key_id)):
            while cache:
                oldest = next(iter(cache))
                if cache[oldest][0] > now:
                    break
                del cache[oldest]
            cache.pop(name, None)
            cache[name] = (expires, key)

    @property
    def held(self) -> int:
        """How many keys this process holds in memory."""
        return len(self._by_id)
