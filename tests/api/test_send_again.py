"""Sending a message in doubt again (`POST /communications/messages/{id}/send-again`):
what the route answers for messages that are not in doubt, and a step in doubt
that staff send again going out exactly once."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from communications.channels.base import Delivery, InDoubtDeliveryError, Outgoing
from communications.message_store import MessageRecord
from guest_journey.database import SessionFactory
from guest_journey.reservations import Channel
from tests.api import test_staff_pages as staff_pages
from tests.api.test_journey_ops import eventually
from tests.api.test_reservations import reservation_body
from tests.api.test_staff_pages import HTML, OPS, RES, bearer, sign_in
from tests.recording_sender import RecordingSender
from tests.workflows.journeys import end, now

staff_settings = staff_pages.staff_settings
web = staff_pages.web


def outbound(mid: str, reservation_id: str | None, status: str, *, direction: str = "outbound",
             step_key: str | None = "checkin_invitation") -> MessageRecord:
    moment = datetime.now(UTC) - timedelta(minutes=5)
    return MessageRecord(
        id=mid, reservation_id=reservation_id, hotel_id="hotel-1", direction=direction, channel="email",
        template="checkin_invitation" if direction == "outbound" else None, step_key=step_key, status=status,
        created_at=moment, updated_at=moment,
    )


async def store(sessions: SessionFactory, *records: MessageRecord) -> None:
    async with sessions() as session:
        session.add_all(records)
        await session.commit()


async def test_only_a_message_in_doubt_is_sent_again(api, sessions):
    rid = f"R-{uuid.uuid4().hex[:8]}"
    ids = {name: str(uuid.uuid4()) for name in ("sent", "failed", "inbound", "doubt", "unknown")}
    await store(
        sessions,
        outbound(ids["sent"], rid, "sent"),
        outbound(ids["failed"], rid, "failed"),
        outbound(ids["inbound"], rid, "received", direction="inbound", step_key=None),
        outbound(ids["doubt"], rid, "in_doubt"),
    )

    unknown = await api.post(f"/communications/messages/{ids['unknown']}/send-again")
    assert unknown.status_code == 404 and unknown.json() == {"detail": f"no message '{ids['unknown']}'"}
    for status in ("sent", "failed"):
        answer = await api.post(f"/communications/messages/{ids[status]}/send-again")
        assert answer.status_code == 409, answer.text
        assert answer.json()["detail"] == (
            f"message '{ids[status]}' is {status}, not in_doubt: only a message in doubt is sent again")
    inbound = await api.post(f"/communications/messages/{ids['inbound']}/send-again")
    assert inbound.status_code == 409 and "from the guest" in inbound.json()["detail"]
    malformed = await api.post("/communications/messages/not-a-message-id/send-again")
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["loc"] == ["path", "message_id"]
    # In doubt, but its journey is not there: the journey's answer.
    orphan = await api.post(f"/communications/messages/{ids['doubt']}/send-again")
    assert orphan.status_code == 404 and orphan.json() == {"detail": f"no journey for reservation '{rid}'"}


class InDoubtOnce(RecordingSender):
    """An e-mail server that loses its answer to the first check-in invitation of each
    reservation (the guest did not get it): that send is in doubt; later ones go through."""

    def __init__(self) -> None:
        super().__init__(Channel.email)
        self.in_doubt: dict[str, str] = {}

    async def send(self, outgoing: Outgoing) -> Delivery:
        if outgoing.rendered.template == "checkin_invitation" and outgoing.reservation_id not in self.in_doubt:
            self.calls += 1
            self.in_doubt[outgoing.reservation_id] = outgoing.message_id
            raise InDoubtDeliveryError("SMTP: timed out after DATA")
        return await super().send(outgoing)

    def invitations_to(self, reservation_id: str) -> list[str]:
        """The check-in invitations that went out (the journey's later steps may come due meanwhile)."""
        return [
            outgoing.message_id for outgoing in self.sent
            if outgoing.reservation_id == reservation_id and outgoing.rendered.template == "checkin_invitation"
        ]


async def test_a_step_in_doubt_sent_again_goes_out_once(env, make_worker, sessions, staff_settings, web):
    by_api, by_panel = (f"R-DOUBT-{uuid.uuid4().hex[:8]}" for _ in range(2))
    email = InDoubtOnce()
    arrival = await now(env) + timedelta(days=2)
    await sign_in(web)
    async with make_worker({Channel.email: email}):
        for rid in (by_api, by_panel):
            put = await web.put(f"/reservations/{rid}", json=reservation_body(arrival), headers=bearer(RES))
            assert put.status_code == 201, put.text

        async def invitation(rid: str) -> dict[str, Any]:
            journey = (await web.get(f"/guest-experience/{rid}", headers=bearer(OPS))).json()
            return next(step for step in journey["steps"] if step["key"] == "checkin_invitation")

        doubtful = {}
        for rid in (by_api, by_panel):
            step = await eventually(lambda rid=rid: invitation(rid), lambda step: step["status"] == "in_doubt")
            assert step["reason"] and step["message_id"] == email.in_doubt[rid]
            doubtful[rid] = step["message_id"]
            async with sessions() as session:
                record = await session.get(MessageRecord, step["message_id"])
            assert record is not None and record.status == "in_doubt"
        assert email.sent == []

        # By API.
        message_id = doubtful[by_api]
        again = await web.post(f"/communications/messages/{message_id}/send-again",
                               headers={**bearer(OPS), "idempotency-key": f"again-{by_api}"})
        assert again.status_code == 202, again.text
        assert again.json() == {"message_id": message_id, "reservation_id": by_api, "step_key": "checkin_invitation"}

        # By the panel's one click, on the needs-attention list.
        page = await web.get("/guest-experience", headers=HTML)
        section = page.text[page.text.index('id="attention-in_doubt"'):]
        form = re.search(r'<form method="post" action="/guest-experience"[^>]*>((?:(?!</form>).)*'
                         + re.escape(doubtful[by_panel]) + r'.*?)</form>', section, re.S)
        assert form is not None, section
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(1)))
        assert fields["action"] == "send_again" and fields["message_id"] == doubtful[by_panel]
        clicked = await web.post("/guest-experience", data=fields)
        assert clicked.status_code == 303, clicked.text
        assert clicked.headers["location"] == f"/guest-experience?reservation_id={by_panel}&done=again#timeline"
        confirmed = await web.get(clicked.headers["location"], headers=HTML)
        assert "A mensagem em dúvida será enviada novamente, uma vez, pelo mesmo canal" in confirmed.text

        await email.wait_for(2)
        for rid in (by_api, by_panel):
            step = await eventually(lambda rid=rid: invitation(rid), lambda step: step["status"] == "done")
            assert step["message_id"] == doubtful[rid]
        replayed = await web.post(f"/communications/messages/{message_id}/send-again",
                                  headers={**bearer(OPS), "idempotency-key": f"again-{by_api}"})
        assert replayed.status_code == 202 and replayed.json() == again.json()  # a retry: the first answer
        assert replayed.headers["idempotent-replayed"] == "true"
        twice = await web.post(f"/communications/messages/{message_id}/send-again", headers=bearer(OPS))
        assert twice.status_code == 409, twice.text
        assert f"message '{message_id}' is sent, not in_doubt" in twice.json()["detail"]
        page = await web.get("/guest-experience", headers=HTML)
        assert all(mid not in page.text for mid in doubtful.values())  # no longer in doubt
        for rid in (by_api, by_panel):
            await end(env, rid)

    for rid in (by_api, by_panel):
        assert email.invitations_to(rid) == [doubtful[rid]]  # once, with the same message id, on the same channel
