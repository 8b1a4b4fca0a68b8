"""DemoGuestWorkflow: one simulated guest of `guest-journey demo`, acting on their
reservation at the moments drawn for them.

The guest's acts (booking, online check-in, an answer to an offer, a message, the
staff's reply to it, the feedback) are drawn before the run (`commands.demo_draws`)
and given in the input, each with its moment. The workflow sleeps on durable timers
until each moment (the time-skipping test server skips them) and then has the act
done by an activity that calls the service functions the HTTP routes call
(`services.demo_guest_acts`); this module knows only that activity's name and input.
Registered by the demo's own worker only, never by `worker.py`.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from guest_journey.reservations import Channel, Reservation

DEMO_GUEST_ACT = "demo_guest_act"
"""The activity's name: its code is `services.demo_guest_acts`."""

ACT_TIMEOUT = timedelta(minutes=2)
ACT_RETRIES = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                          maximum_attempts=10)


class GuestActKind(StrEnum):
    book = "book"  # the reservation system sends the reservation (PUT /reservations/{id})
    check_in = "check_in"  # the guest submits the online check-in form
    answer_offer = "answer_offer"  # the guest accepts or declines an offer sent to them
    write = "write"  # the guest writes to the hotel (WhatsApp or e-mail)
    staff_reply = "staff_reply"  # staff answer that message on its channel (the inbox)
    give_feedback = "give_feedback"  # the guest answers the post-stay feedback form


class GuestAct(BaseModel):
    kind: GuestActKind
    at: AwareDatetime
    offer: str | None = None
    accepted: bool | None = None
    channel: Channel | None = None
    score: int | None = None
    satisfaction: int | None = None


class DemoGuestInput(BaseModel):
    reservation: Reservation
    acts: list[GuestAct]


class GuestActInput(BaseModel):
    """One act of a reservation's guest; `number` (its place among the guest's acts)
    makes its request ids, so a retried act is taken once."""

    reservation: Reservation
    act: GuestAct
    number: int


@workflow.defn
class DemoGuestWorkflow:
    @workflow.run
    async def run(self, input: DemoGuestInput) -> int:
        """Each act at its moment, in order; how many were done."""
        for number, act in enumerate(sorted(input.acts, key=lambda act: act.at)):
            wait = act.at - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait)
            await workflow.execute_activity(
                DEMO_GUEST_ACT,
                GuestActInput(reservation=input.reservation, act=act, number=number),
                start_to_close_timeout=ACT_TIMEOUT,
                retry_policy=ACT_RETRIES,
            )
        return len(input.acts)
