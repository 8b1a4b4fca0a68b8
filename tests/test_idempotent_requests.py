"""The stored answers of `Idempotency-Key` requests: claim, replay, in flight, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from guest_journey.idempotent_requests import (
    KEEP_FOR,
    LEASE,
    Answered,
    Claimed,
    IdempotentRequest,
    InFlight,
    Mismatch,
    claim,
    record_answer,
    release,
    renew,
)
from tests.communications import database_fixtures

db_sessions = database_fixtures.db_sessions
T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
SCOPE = "key:abc:POST /communications/send"


async def test_a_key_is_claimed_once_and_its_answer_replayed(db_sessions):
    async with db_sessions() as session:
        assert await claim(session=session, scope=SCOPE, key="k1", fingerprint="f1", now=T0) == Claimed()
        running = await claim(session=session, scope=SCOPE, key="k1", fingerprint="f1", now=T0 + timedelta(seconds=1))
        assert running == InFlight(lease_until=T0 + LEASE)
        assert await claim(session=session, scope=SCOPE, key="k1", fingerprint="f2", now=T0) == Mismatch()

        await record_answer(session=session, scope=SCOPE, key="k1", status_code=202, body='{"a":1}')
        later = T0 + KEEP_FOR - timedelta(seconds=1)
        assert await claim(session=session, scope=SCOPE, key="k1", fingerprint="f1", now=later) == Answered(
            202, '{"a":1}')
        assert await claim(session=session, scope=SCOPE, key="k1", fingerprint="f2", now=later) == Mismatch()
        # The same key of another caller or route is another key.
        assert await claim(session=session, scope="loopback:POST /communications/send", key="k1",
                           fingerprint="f2", now=T0) == Claimed()


async def test_a_key_names_a_new_request_once_it_expired(db_sessions):
    async with db_sessions() as session:
        await claim(session=session, scope=SCOPE, key="old", fingerprint="f1", now=T0)
        await record_answer(session=session, scope=SCOPE, key="old", status_code=200, body="{}")
        expired = T0 + KEEP_FOR
        assert await claim(session=session, scope=SCOPE, key="old", fingerprint="f2", now=expired) == Claimed()
        assert await session.get(IdempotentRequest, (SCOPE, "old"), populate_existing=True) is not None


async def test_a_failed_request_gives_its_key_up_and_a_stopped_one_loses_it_after_its_lease(db_sessions):
    async with db_sessions() as session:
        await claim(session=session, scope=SCOPE, key="failed", fingerprint="f1", now=T0)
        await release(session=session, scope=SCOPE, key="failed")
        assert await claim(session=session, scope=SCOPE, key="failed", fingerprint="f1", now=T0) == Claimed()

        await claim(session=session, scope=SCOPE, key="stopped", fingerprint="f1", now=T0)
        await renew(session=session, scope=SCOPE, key="stopped", now=T0 + LEASE / 2)
        assert isinstance(await claim(session=session, scope=SCOPE, key="stopped", fingerprint="f1",
                                      now=T0 + LEASE), InFlight)  # renewed: still running
        taken_at = T0 + LEASE / 2 + LEASE
        assert await claim(session=session, scope=SCOPE, key="stopped", fingerprint="f1", now=taken_at) == Claimed()
        assert await claim(session=session, scope=SCOPE, key="stopped", fingerprint="f1",
                           now=taken_at) == InFlight(lease_until=taken_at + LEASE)

        # An answered key is never given up.
        await record_answer(session=session, scope=SCOPE, key="stopped", status_code=201, body="{}")
        await release(session=session, scope=SCOPE, key="stopped")
        assert await claim(session=session, scope=SCOPE, key="stopped", fingerprint="f1",
                           now=taken_at) == Answered(201, "{}")
