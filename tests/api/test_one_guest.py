"""A reservation stays one guest's, through HTTP: it keeps its hotel, and when the
reservation system gives it to another guest, what the earlier guest gave on the
guest pages is cleared and nothing is sent twice."""
# ruff: noqa: F811  (the guest pages' fixtures are imported, and named by the tests)

from __future__ import annotations

import asyncio
from datetime import datetime

from tests.api.test_guest_pages import (  # noqa: F401  (fixtures)
    GOOD_CHECKIN,
    app,
    book,
    guest_settings,
    journey,
    links,
    post_form,
    request_id,
    rid,
    web,
)
from tests.api.test_reservations import reservation_body
from tests.workflows.journeys import end

OTHER_GUEST = {"name": "Bruno Lima", "email": "bruno@example.com"}


async def put(web, rid: str, departure: datetime, **guest):  # type: ignore[no-untyped-def]
    body = reservation_body(datetime.fromisoformat("2000-01-01T00:00:00+00:00"), **guest)
    stored = await journey(web, rid)
    body.update(arrival=stored["arrival"], departure=departure.isoformat())
    return await web.put(f"/reservations/{rid}", json=body), body


async def checked_in(web, links, rid: str, departure: datetime) -> str:  # type: ignore[no-untyped-def]
    url = links.of(rid, departure)["checkin_url"]
    form = await web.get(url)
    sent = await post_form(web, url, form, {**GOOD_CHECKIN, "request_id": request_id(form)})
    assert sent.status_code == 303, sent.text
    return url


async def invited(web, rid: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    for _ in range(200):
        state = await journey(web, rid)
        if {step["key"]: step for step in state["steps"]}["checkin_invitation"]["status"] == "done":
            return state
        await asyncio.sleep(0.05)
    raise AssertionError("the invitation was never sent")


async def test_a_reservation_keeps_its_hotel(env, worker, web, rid):
    async with worker():
        departure = await book(web, env, rid)
        _, body = await put(web, rid, departure)
        moved = await web.put(f"/reservations/{rid}", json={**body, "hotel_id": "hotel-2"})
        state = await journey(web, rid)
        await end(env, rid)
    assert moved.status_code == 409
    assert "hotel_id cannot change" in moved.json()["detail"] and "'hotel-1'" in moved.json()["detail"]
    assert state["hotel_id"] == "hotel-1"


async def test_another_guest_does_not_see_the_earlier_guests_check_in(env, worker, email, web, links, rid):
    async with worker():
        departure = await book(web, env, rid)
        url = await checked_in(web, links, rid, departure)
        before = await invited(web, rid)  # the check-in invitation went to the first guest
        changed, _ = await put(web, rid, departure, **OTHER_GUEST)
        after = await journey(web, rid)
        page = await web.get(url)
        await asyncio.sleep(0.5)  # time for anything (wrongly) due again to go
        sent = email.templates()
        await end(env, rid)

    assert before["checkin"]["status"] == "completed" and before["preferences"]["bed"] == "double"
    assert changed.status_code == 200, changed.text
    assert after["guest"]["name"] == "Bruno Lima"
    assert after["checkin"] == {"status": "pending", "completed_at": None, "details": {}}
    assert not {"bed", "pillow", "dietary", "accessibility", "arrival_notes"} & after["preferences"].keys()
    [change] = after["guest_changes"]
    assert "another guest" in change["reason"] and change["cleared"] == ["checkin", "preferences"]
    for private in ("Rua das Flores", "4567", "1990-05-01", "Late flight", "Ana Souza"):
        assert private not in page.text and private not in str(after["checkin"]), private
    steps = {step["key"]: step for step in after["steps"]}
    invitation = {step["key"]: step for step in before["steps"]}["checkin_invitation"]
    assert steps["checkin_invitation"] == invitation  # done stays done, with its message
    assert sent == ["checkin_invitation"]  # nothing sent twice


async def test_a_corrected_name_or_address_is_the_same_guest(env, worker, web, links, rid):
    async with worker():
        departure = await book(web, env, rid)
        await checked_in(web, links, rid, departure)
        respelled, _ = await put(web, rid, departure, name="Ana  Sousa")
        readdressed, _ = await put(web, rid, departure, name="Ana  Sousa", email="ana.sousa@example.com")
        state = await journey(web, rid)
        await end(env, rid)
    assert respelled.status_code == readdressed.status_code == 200
    assert state["checkin"]["status"] == "completed" and state["preferences"]["bed"] == "double"
    assert state["guest_changes"] == []
