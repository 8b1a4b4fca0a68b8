"""`GET /guest-experience/{id}` answers from the read model; `?consistent=true` asks
the running journey. A journey answers an update only once the read model holds
its change, so a read right after an update sees it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from communications.channels.base import Delivery, Outgoing
from guest_journey.read_model import get_journey, save_journey
from guest_journey.reservations import Channel
from tests.api.test_reservations import reservation_body
from tests.recording_sender import RecordingSender
from tests.workflows.journeys import end, now


async def test_a_read_right_after_each_update_sees_it(env, worker, api):
    arrival = await now(env) + timedelta(days=20)
    async with worker():
        created = await api.put("/reservations/R700", json=reservation_body(arrival))
        first = await api.get("/guest-experience/R700")
        reads = []
        for day in range(1, 6):
            moved = await api.put("/reservations/R700", json=reservation_body(arrival + timedelta(days=day)))
            assert moved.status_code == 200, moved.text
            reads.append((await api.get("/guest-experience/R700")).json())
        checked_in = await api.post("/reservations/R700/events", json={"type": "checked_in"})
        in_stay = await api.get("/guest-experience/R700")
        await end(env, "R700")
    assert created.status_code == 201, created.text
    assert first.status_code == 200 and first.json()["stage"] == "pre_arrival"
    assert datetime.fromisoformat(first.json()["arrival"]) == arrival
    arrivals = [datetime.fromisoformat(read["arrival"]) for read in reads]
    assert arrivals == [arrival + timedelta(days=day) for day in range(1, 6)]
    revisions = [read["revision"] for read in reads]
    assert revisions == sorted(set(revisions))  # each read saw a newer journey
    assert checked_in.json()["stage"] == "in_stay"
    assert in_stay.json()["stage"] == "in_stay"


async def test_consistent_read_asks_the_running_journey(env, worker, api, sessions):
    arrival = await now(env) + timedelta(days=20)
    async with worker():
        await api.put("/reservations/R701", json=reservation_body(arrival))
        async with sessions() as session:
            stored = await get_journey(session=session, reservation_id="R701")
            assert stored is not None
            # A row that says something the journey does not: only the read model knows "suite".
            stored = stored.model_copy(update={"room_type": "suite", "revision": stored.revision + 1})
            assert await save_journey(session=session, view=stored)
        from_read_model = await api.get("/guest-experience/R701")
        from_journey = await api.get("/guest-experience/R701", params={"consistent": "true"})
        await end(env, "R701")
    assert from_read_model.status_code == 200 and from_read_model.json()["room_type"] == "suite"
    assert from_journey.status_code == 200 and from_journey.json()["room_type"] == "deluxe"


async def test_an_unknown_reservation_is_404_either_way(api):
    plain = await api.get("/guest-experience/NOPE")
    consistent = await api.get("/guest-experience/NOPE", params={"consistent": "true"})
    assert plain.status_code == consistent.status_code == 404
    assert plain.json() == consistent.json() == {"detail": "no journey for reservation 'NOPE'"}


class HeldSender(RecordingSender):
    """An e-mail provider that takes its time: each send waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__(Channel.email)
        self.sending = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, outgoing: Outgoing) -> Delivery:
        self.sending.set()
        await self.release.wait()
        return await super().send(outgoing)


async def test_an_update_answers_while_a_message_is_still_being_sent(env, worker, api):
    """A slow provider holds the journey's loop in a send; the reservation system's PUT
    is answered (and readable) without waiting for that send."""
    held = HeldSender()
    arrival = await now(env) + timedelta(days=20)
    async with worker(channels={Channel.email: held}):
        await api.put("/reservations/R702", json=reservation_body(arrival))
        sent = await api.post("/communications/send", json={
            "reservation_id": "R702", "template": "free_text",
            "context": {"journey_stage": "pre_arrival", "body": "Seu quarto estará pronto às 12h."},
        })
        assert sent.status_code == 202, sent.text
        await asyncio.wait_for(held.sending.wait(), timeout=30)
        async with asyncio.timeout(20):  # far less than a send's retries could take
            moved = await api.put("/reservations/R702", json=reservation_body(arrival + timedelta(days=1)))
            read = await api.get("/guest-experience/R702")
        still_sending = not held.sent
        held.release.set()
        await held.wait_for(1)
        await end(env, "R702")
    assert moved.status_code == 200, moved.text
    assert still_sending
    assert datetime.fromisoformat(read.json()["arrival"]) == arrival + timedelta(days=1)
