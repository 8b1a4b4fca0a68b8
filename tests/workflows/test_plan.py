"""The planner (CONTRACT §3): what a hotel's guest receives, and when.

Every expected moment is written out in the hotel's local time, the way a
hotel would state it ("the invitation goes at 15:00 on the 17th").
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guest_journey.journeys import Stage, Step, StepKind, StepStatus
from guest_journey.policy import HotelPolicy
from guest_journey.reservations import Reservation
from tests.factories import make_policy, make_reservation
from workflows.plan import (
    CLOSE_KEY,
    FEEDBACK_KEY,
    FEEDBACK_REMINDER_KEY,
    INVITATION_KEY,
    LATE_LIMIT,
    JourneyFacts,
    due_steps,
    follow_up_key,
    iso_duration,
    next_moment,
    plan_steps,
    reminder_key,
    upsell_key,
)

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
TOKYO = ZoneInfo("Asia/Tokyo")
LISBON = ZoneInfo("Europe/Lisbon")
NEW_YORK = ZoneInfo("America/New_York")

REMINDER_24H = reminder_key(timedelta(hours=24))
REMINDER_3H = reminder_key(timedelta(hours=3))
ROOM_UPGRADE = upsell_key("room_upgrade")
LATE_CHECKOUT = upsell_key("late_checkout")
LATE_CHECKOUT_FOLLOW_UP = follow_up_key("late_checkout")

PRE_ARRIVAL_KEYS = (INVITATION_KEY, REMINDER_24H, REMINDER_3H, ROOM_UPGRADE)


def sp(month: int, day: int, hour: int, minute: int = 0, year: int = 2025) -> datetime:
    """A moment in São Paulo (UTC-03:00, no daylight saving time)."""
    return datetime(year, month, day, hour, minute, tzinfo=SAO_PAULO)


BOOKED = sp(3, 1, 10)  # 19 days before the default arrival, 2025-03-20 15:00


def stay(**overrides) -> Reservation:
    """The default 3-night stay, by a guest who accepts marketing."""
    return make_reservation(**{"marketing_consent": True, **overrides})


def plan(
    reservation: Reservation | None = None,
    policy: HotelPolicy | None = None,
    now: datetime = BOOKED,
    **facts,
) -> list[Step]:
    return plan_steps(reservation or stay(), policy or make_policy(), JourneyFacts(**facts), now)


def by_key(steps: list[Step]) -> dict[str, Step]:
    keys = [step.key for step in steps]
    assert len(keys) == len(set(keys)), f"duplicate keys in {keys}"
    return {step.key: step for step in steps}


def mark(
    steps: list[Step], key: str, status: StepStatus = StepStatus.done, at: datetime | None = None
) -> list[Step]:
    """The plan with one step settled the way the workflow would settle it."""
    found = False
    result = []
    for step in steps:
        if step.key == key:
            found = True
            update: dict = {"status": status}
            if status is StepStatus.done:
                update["done_at"] = at or step.scheduled_for
            step = step.model_copy(update=update)
        result.append(step)
    assert found, key
    return result


def moments(steps: list[Step]) -> dict[str, tuple[StepStatus, datetime | None]]:
    return {step.key: (step.status, step.scheduled_for) for step in steps}


# -- a normal stay ----------------------------------------------------------------


def test_normal_stay_every_step_at_its_moment():
    steps = plan()

    assert moments(steps) == {
        INVITATION_KEY: (StepStatus.planned, sp(3, 17, 15)),  # arrival - 72h
        ROOM_UPGRADE: (StepStatus.planned, sp(3, 18, 15)),  # arrival - 48h
        REMINDER_24H: (StepStatus.planned, sp(3, 19, 15)),  # arrival - 24h
        REMINDER_3H: (StepStatus.planned, sp(3, 20, 12)),  # arrival - 3h
        LATE_CHECKOUT: (StepStatus.planned, sp(3, 22, 16)),  # departure - 20h
        LATE_CHECKOUT_FOLLOW_UP: (StepStatus.planned, sp(3, 22, 20)),  # offer + 4h
        FEEDBACK_KEY: (StepStatus.planned, sp(3, 23, 14)),  # departure + 2h
        FEEDBACK_REMINDER_KEY: (StepStatus.planned, sp(3, 25, 14)),  # feedback + 2d
        CLOSE_KEY: (StepStatus.planned, sp(3, 30, 12)),  # departure + 7d
    }
    assert all(step.reason is None for step in steps)


def test_normal_stay_steps_come_in_the_order_they_are_due():
    steps = plan()

    assert [step.key for step in steps] == [
        INVITATION_KEY,
        ROOM_UPGRADE,
        REMINDER_24H,
        REMINDER_3H,
        LATE_CHECKOUT,
        LATE_CHECKOUT_FOLLOW_UP,
        FEEDBACK_KEY,
        FEEDBACK_REMINDER_KEY,
        CLOSE_KEY,
    ]
    planned = [step.scheduled_for for step in steps]
    assert planned == sorted(planned)


def test_steps_carry_their_kind_and_offer():
    steps = by_key(plan())

    assert steps[INVITATION_KEY].kind is StepKind.checkin_invitation
    assert steps[REMINDER_3H].kind is StepKind.checkin_reminder
    assert (steps[ROOM_UPGRADE].kind, steps[ROOM_UPGRADE].offer) == (
        StepKind.upsell,
        "room_upgrade",
    )
    assert (steps[LATE_CHECKOUT_FOLLOW_UP].kind, steps[LATE_CHECKOUT_FOLLOW_UP].offer) == (
        StepKind.upsell_follow_up,
        "late_checkout",
    )
    assert steps[FEEDBACK_KEY].kind is StepKind.guest_post_stay_feedback
    assert steps[FEEDBACK_REMINDER_KEY].kind is StepKind.feedback_reminder
    assert steps[CLOSE_KEY].kind is StepKind.close


def test_steps_at_the_same_moment_keep_a_stable_order():
    # Booked late: invitation and room upgrade are both due at once; the
    # invitation (the more important message) comes first.
    now = sp(3, 20, 10)
    steps = plan(now=now)

    due = due_steps(steps, now)
    assert [step.key for step in due] == [INVITATION_KEY, ROOM_UPGRADE]


def test_follow_up_counts_from_when_the_offer_actually_went_out():
    first = plan()
    sent_at = sp(3, 22, 16, 7)
    steps = by_key(
        plan(now=sent_at, stage=Stage.in_stay, steps=mark(first, LATE_CHECKOUT, at=sent_at))
    )

    assert steps[LATE_CHECKOUT].status is StepStatus.done
    assert steps[LATE_CHECKOUT_FOLLOW_UP].status is StepStatus.planned
    assert steps[LATE_CHECKOUT_FOLLOW_UP].scheduled_for == sp(3, 22, 20, 7)


def test_follow_up_skipped_once_the_offer_is_answered():
    first = plan()
    sent_at = sp(3, 22, 16)
    steps = by_key(
        plan(
            now=sp(3, 22, 17),
            stage=Stage.in_stay,
            answered_offers=["late_checkout"],
            steps=mark(first, LATE_CHECKOUT, at=sent_at),
        )
    )

    assert steps[LATE_CHECKOUT].status is StepStatus.done
    follow_up = steps[LATE_CHECKOUT_FOLLOW_UP]
    assert follow_up.status is StepStatus.skipped
    assert "answered" in follow_up.reason


def test_upsell_not_offered_again_once_answered():
    steps = by_key(plan(answered_offers=["room_upgrade"]))

    assert steps[ROOM_UPGRADE].status is StepStatus.skipped
    assert "answered" in steps[ROOM_UPGRADE].reason
    assert steps[LATE_CHECKOUT].status is StepStatus.planned


def test_follow_up_skipped_when_the_offer_could_not_be_sent():
    first = plan(now=sp(3, 21, 10), stage=Stage.in_stay)
    steps = by_key(
        plan(
            now=sp(3, 22, 17),
            stage=Stage.in_stay,
            steps=mark(first, LATE_CHECKOUT, StepStatus.failed),
        )
    )

    assert steps[LATE_CHECKOUT].status is StepStatus.failed
    assert steps[LATE_CHECKOUT_FOLLOW_UP].status is StepStatus.skipped
    assert steps[LATE_CHECKOUT_FOLLOW_UP].reason == "offer not sent"


def test_follow_up_stays_planned_while_the_offer_is_being_sent():
    first = plan(now=sp(3, 21, 10), stage=Stage.in_stay)
    sending = mark(first, LATE_CHECKOUT, StepStatus.due)
    steps = by_key(plan(now=sp(3, 22, 16), stage=Stage.in_stay, steps=sending))

    assert steps[LATE_CHECKOUT].status is StepStatus.due
    assert moments([steps[LATE_CHECKOUT_FOLLOW_UP]]) == {
        LATE_CHECKOUT_FOLLOW_UP: (StepStatus.planned, sp(3, 22, 20))
    }


def test_feedback_reminder_counts_from_when_feedback_was_requested():
    first = plan(now=sp(3, 23, 12), stage=Stage.post_stay)
    requested_at = sp(3, 23, 14, 3)
    steps = by_key(
        plan(
            now=requested_at,
            stage=Stage.post_stay,
            steps=mark(first, FEEDBACK_KEY, at=requested_at),
        )
    )

    assert steps[FEEDBACK_KEY].status is StepStatus.done
    assert steps[FEEDBACK_REMINDER_KEY].scheduled_for == sp(3, 25, 14, 3)


def test_no_feedback_reminder_when_the_policy_has_none():
    steps = by_key(plan(policy=make_policy(feedback_reminder_after=None)))

    assert FEEDBACK_REMINDER_KEY not in steps
    assert steps[FEEDBACK_KEY].status is StepStatus.planned


def test_planning_again_with_nothing_new_changes_nothing():
    first = plan()
    again = plan(steps=first)
    later = plan(now=sp(3, 10, 9), steps=again)

    assert again == first
    assert later == first


# -- quiet hours ------------------------------------------------------------------


def test_step_due_at_2330_moves_to_0800_next_day_and_says_why():
    reservation = stay(arrival=sp(3, 20, 23, 30))
    steps = by_key(plan(reservation))

    invitation = steps[INVITATION_KEY]  # arrival - 72h = 17th 23:30
    assert invitation.status is StepStatus.planned
    assert invitation.scheduled_for == sp(3, 18, 8)
    assert "quiet hours" in invitation.reason
    assert "22:00-08:00" in invitation.reason
    # Steps outside quiet hours are untouched and carry no reason.
    assert steps[REMINDER_3H].scheduled_for == sp(3, 20, 20, 30)
    assert steps[REMINDER_3H].reason is None


def test_quiet_hours_start_moves_a_step_and_end_does_not():
    at_start = by_key(plan(stay(arrival=sp(3, 20, 22))))[INVITATION_KEY]
    at_end = by_key(plan(stay(arrival=sp(3, 20, 8))))[INVITATION_KEY]

    assert at_start.scheduled_for == sp(3, 18, 8)
    assert "quiet hours" in at_start.reason
    assert at_end.scheduled_for == sp(3, 17, 8)
    assert at_end.reason is None


def test_step_after_midnight_moves_to_0800_the_same_day():
    steps = by_key(plan(stay(arrival=sp(3, 20, 2, 15))))

    assert steps[INVITATION_KEY].scheduled_for == sp(3, 17, 8)
    assert steps[ROOM_UPGRADE].scheduled_for == sp(3, 18, 8)


def test_reminder_that_quiet_hours_would_hold_past_arrival_goes_two_hours_before_it():
    # Arrival at 01:00: the 3h reminder (22:00) would wait until 08:00, after arrival;
    # check-in messages wait at most until the arrival margin (PT2H): 23:00.
    steps = by_key(plan(stay(arrival=sp(3, 20, 1))))

    reminder = steps[REMINDER_3H]
    assert reminder.status is StepStatus.planned
    assert reminder.scheduled_for == sp(3, 19, 23)
    assert reminder.reason == (
        "quiet hours 22:00-08:00 (America/Sao_Paulo) held it from 2025-03-19 22:00 to 2025-03-19 23:00, "
        "PT2H before arrival: their end at 2025-03-20 08:00 is less than PT2H before arrival"
    )
    # The 24h reminder (01:00 the day before) still has time after quiet hours: it waits.
    assert steps[REMINDER_24H].scheduled_for == sp(3, 19, 8)
    assert next_moment(list(steps.values())) == sp(3, 17, 8)


def test_a_kind_set_to_wait_is_skipped_when_quiet_hours_end_after_arrival():
    policy = make_policy(quiet_hours={"start": "22:00", "end": "08:00", "messages": {"checkin_reminder": "wait"}})
    steps = by_key(plan(stay(arrival=sp(3, 20, 1)), policy))

    reminder = steps[REMINDER_3H]
    assert reminder.status is StepStatus.skipped
    assert "quiet hours" in reminder.reason
    assert "arrival" in reminder.reason


def test_a_booking_at_2234_for_an_arrival_two_hours_later_gets_its_invitation_at_once():
    booked = sp(3, 19, 22, 34)
    steps = by_key(plan(stay(arrival=sp(3, 20, 0, 34)), now=booked))

    invitation = steps[INVITATION_KEY]
    assert invitation.status is StepStatus.planned
    assert invitation.scheduled_for == booked
    assert invitation.reason == (
        "goes in quiet hours 22:00-08:00 (America/Sao_Paulo): their end at 2025-03-20 08:00 "
        "is less than PT2H before arrival"
    )
    assert due_steps(list(steps.values()), booked) == [invitation]
    # Planned before per-kind quiet hours, the same booking got nothing (what running journeys replay).
    before = by_key(plan_steps(stay(arrival=sp(3, 20, 0, 34)), make_policy(), JourneyFacts(), booked,
                               quiet_hours_by_kind=False))
    assert before[INVITATION_KEY].status is StepStatus.skipped


def test_an_offer_due_at_2300_waits_until_quiet_hours_end():
    # Room upgrade 48h before an 23:00 arrival: 23:00, inside quiet hours; offers wait.
    steps = by_key(plan(stay(arrival=sp(3, 20, 23))))

    offer = steps[ROOM_UPGRADE]
    assert offer.status is StepStatus.planned
    assert offer.scheduled_for == sp(3, 19, 8)
    assert "quiet hours 22:00-08:00" in offer.reason
    # A late booking's offer waits too, even when the check-in invitation goes at once.
    late = by_key(plan(stay(arrival=sp(3, 21, 15)), now=sp(3, 20, 23)))
    assert late[ROOM_UPGRADE].scheduled_for == sp(3, 21, 8)


def test_per_kind_rules_and_margin_from_the_policy():
    policy = make_policy(quiet_hours={
        "start": "22:00", "end": "08:00", "arrival_margin": "PT6H",
        "messages": {"upsell": "send", "checkin_invitation": "wait"},
    })
    steps = by_key(plan(stay(arrival=sp(3, 20, 9)), policy))

    assert steps[ROOM_UPGRADE].scheduled_for == sp(3, 18, 9)  # not in quiet hours anyway
    offer_at_night = by_key(plan(stay(arrival=sp(3, 20, 23)), policy))[ROOM_UPGRADE]
    assert offer_at_night.scheduled_for == sp(3, 18, 23)
    assert offer_at_night.reason is None
    # The 3h reminder (06:00) would wait until 08:00, one hour before arrival: with a
    # PT6H margin it goes at 06:00, its own moment, in quiet hours.
    reminder = steps[REMINDER_3H]
    assert reminder.scheduled_for == sp(3, 20, 6)
    assert reminder.reason.startswith("goes in quiet hours")
    late = by_key(plan(stay(arrival=sp(3, 20, 0, 34)), policy, now=sp(3, 19, 22, 34)))
    assert late[INVITATION_KEY].status is StepStatus.skipped


def test_no_quiet_hours_no_moving():
    reservation = stay(arrival=sp(3, 20, 23, 30))
    steps = by_key(plan(reservation, make_policy(quiet_hours=None)))

    assert steps[INVITATION_KEY].scheduled_for == sp(3, 17, 23, 30)
    assert steps[INVITATION_KEY].reason is None
    assert steps[ROOM_UPGRADE].scheduled_for == sp(3, 18, 23, 30)
    assert all(step.reason is None for step in steps.values())


def test_quiet_hours_within_one_day():
    policy = make_policy(quiet_hours={"start": "13:00", "end": "15:00"})
    steps = by_key(plan(stay(arrival=sp(3, 20, 14)), policy))

    assert steps[INVITATION_KEY].scheduled_for == sp(3, 17, 15)
    assert "quiet hours 13:00-15:00" in steps[INVITATION_KEY].reason
    assert steps[REMINDER_3H].scheduled_for == sp(3, 20, 11)


def test_late_booking_inside_quiet_hours_waits_for_the_morning():
    steps = by_key(plan(stay(arrival=sp(3, 21, 15)), now=sp(3, 20, 23)))

    assert steps[INVITATION_KEY].scheduled_for == sp(3, 21, 8)
    assert "quiet hours" in steps[INVITATION_KEY].reason


# -- time zones -------------------------------------------------------------------


def test_same_reservation_in_tokyo_and_sao_paulo_moves_differently():
    # Arrival 18:00 UTC: 15:00 in São Paulo, 03:00 the next day in Tokyo.
    reservation = stay(
        arrival=datetime(2025, 3, 20, 18, 0, tzinfo=UTC),
        departure=datetime(2025, 3, 23, 15, 0, tzinfo=UTC),
    )
    in_sao_paulo = by_key(plan(reservation, make_policy(hotel_timezone="America/Sao_Paulo")))
    in_tokyo = by_key(plan(reservation, make_policy(hotel_timezone="Asia/Tokyo")))

    # Invitation at 17th 18:00 UTC: 15:00 in São Paulo, 03:00 (quiet) in Tokyo.
    assert in_sao_paulo[INVITATION_KEY].scheduled_for == sp(3, 17, 15)
    assert in_sao_paulo[INVITATION_KEY].reason is None
    assert in_tokyo[INVITATION_KEY].scheduled_for == datetime(2025, 3, 18, 8, 0, tzinfo=TOKYO)
    assert "Asia/Tokyo" in in_tokyo[INVITATION_KEY].reason
    # The 3h reminder: 12:00 in São Paulo; 00:00 in Tokyo would wait until after arrival,
    # so it waits only until two hours before it (01:00 Tokyo).
    assert in_sao_paulo[REMINDER_3H].scheduled_for == sp(3, 20, 12)
    assert in_tokyo[REMINDER_3H].scheduled_for == datetime(2025, 3, 21, 1, 0, tzinfo=TOKYO)


@pytest.mark.parametrize(
    ("zone", "due_local", "expected_local", "expected_utc"),
    [
        pytest.param(
            LISBON,
            datetime(2025, 3, 29, 23, 30),
            datetime(2025, 3, 30, 8),
            datetime(2025, 3, 30, 7),
            id="lisbon-spring-forward",
        ),
        pytest.param(
            LISBON,
            datetime(2025, 10, 25, 23, 30),
            datetime(2025, 10, 26, 8),
            datetime(2025, 10, 26, 8),
            id="lisbon-fall-back",
        ),
        pytest.param(
            NEW_YORK,
            datetime(2025, 3, 8, 23, 30),
            datetime(2025, 3, 9, 8),
            datetime(2025, 3, 9, 12),
            id="new-york-spring-forward",
        ),
        pytest.param(
            NEW_YORK,
            datetime(2025, 11, 1, 23, 30),
            datetime(2025, 11, 2, 8),
            datetime(2025, 11, 2, 13),
            id="new-york-fall-back",
        ),
        pytest.param(
            NEW_YORK,
            datetime(2025, 3, 9, 1, 30),
            datetime(2025, 3, 9, 8),
            datetime(2025, 3, 9, 12),
            id="new-york-just-before-the-jump",
        ),
        pytest.param(
            NEW_YORK,
            datetime(2025, 11, 2, 1, 30, fold=1),
            datetime(2025, 11, 2, 8),
            datetime(2025, 11, 2, 13),
            id="new-york-repeated-hour",
        ),
    ],
)
def test_quiet_hours_end_at_0800_local_across_a_clock_change(
    zone, due_local, expected_local, expected_utc
):
    due = due_local.replace(tzinfo=zone)
    reservation = stay(arrival=due + timedelta(hours=72), departure=due + timedelta(days=6))
    policy = make_policy(hotel_timezone=zone.key)
    steps = by_key(plan(reservation, policy, now=due - timedelta(days=10)))

    invitation = steps[INVITATION_KEY]
    assert invitation.scheduled_for == expected_utc.replace(tzinfo=UTC)
    local = invitation.scheduled_for.astimezone(zone)
    assert (local.date(), local.time()) == (expected_local.date(), time(8, 0))
    assert "quiet hours" in invitation.reason


# -- booked late ------------------------------------------------------------------


def test_invitation_goes_at_once_when_its_moment_has_passed():
    # Booked 10 hours before arrival.
    now = sp(3, 20, 10)
    steps = by_key(plan(stay(arrival=sp(3, 20, 20)), now=now))

    assert moments([steps[INVITATION_KEY]]) == {INVITATION_KEY: (StepStatus.planned, now)}
    assert INVITATION_KEY in [step.key for step in due_steps(list(steps.values()), now)]


def test_reminders_already_past_when_first_planned_are_skipped_not_sent_late():
    now = sp(3, 20, 10)
    steps = by_key(plan(stay(arrival=sp(3, 20, 20)), now=now))

    reminder_24h = steps[REMINDER_24H]
    assert reminder_24h.status is StepStatus.skipped
    assert "already passed" in reminder_24h.reason
    assert reminder_24h.scheduled_for == sp(3, 19, 20)
    # The 3h reminder (17:00) is still ahead: it stays planned.
    assert moments([steps[REMINDER_3H]]) == {REMINDER_3H: (StepStatus.planned, sp(3, 20, 17))}
    due = [step.key for step in due_steps(list(steps.values()), now)]
    assert REMINDER_24H not in due


def test_offer_whose_moment_passed_before_arrival_goes_with_the_invitation():
    now = sp(3, 20, 10)
    steps = by_key(plan(stay(arrival=sp(3, 20, 20)), now=now))

    assert moments([steps[ROOM_UPGRADE]]) == {ROOM_UPGRADE: (StepStatus.planned, now)}


def test_reminder_whose_moment_is_exactly_now_at_booking_is_planned():
    now = sp(3, 19, 15)
    steps = by_key(plan(now=now))

    assert moments([steps[REMINDER_24H]]) == {REMINDER_24H: (StepStatus.planned, now)}


# -- short and long stays ---------------------------------------------------------


def _cutoff(step: Step, reservation: Reservation, policy: HotelPolicy) -> datetime | None:
    close_at = reservation.departure + policy.close_after_departure
    if step.kind in (StepKind.checkin_invitation, StepKind.checkin_reminder):
        return reservation.arrival
    if step.kind in (StepKind.upsell, StepKind.upsell_follow_up):
        offer = policy.offer(step.offer)
        return reservation.arrival if offer.before_arrival else reservation.departure
    if step.kind in (StepKind.guest_post_stay_feedback, StepKind.feedback_reminder):
        return close_at
    if step.kind is StepKind.close:
        return close_at + timedelta(microseconds=1)
    return None


def assert_sensible(
    steps: list[Step], reservation: Reservation, policy: HotelPolicy, now: datetime
) -> None:
    """What every plan must satisfy: nothing planned in the past or after its
    cutoff, in quiet hours only as their kind allows, every skipped step says why, and in order."""
    by_key(steps)
    zone = ZoneInfo(policy.hotel_timezone)
    for step in steps:
        if step.status is StepStatus.skipped:
            assert step.reason, step
        if step.status is not StepStatus.planned:
            continue
        assert step.scheduled_for is not None, step
        assert step.scheduled_for >= now or step.kind is StepKind.close, step
        cutoff = _cutoff(step, reservation, policy)
        assert cutoff is None or step.scheduled_for < cutoff, step
        if policy.quiet_hours and step.kind.sends_message:
            local = step.scheduled_for.astimezone(zone).time()
            at = step.scheduled_for
            # In quiet hours only a check-in message whose wait would end too close to arrival.
            assert not policy.quiet_hours.contains(local) or (
                _after_quiet_hours(at, policy, step.kind, reservation.arrival) == at
            ), step
    timed = [step.scheduled_for for step in steps if step.scheduled_for is not None]
    assert timed == sorted(timed)


def test_same_day_booking_arriving_in_two_hours():
    reservation = stay(arrival=sp(3, 20, 15), nights=1)
    policy = make_policy()
    now = sp(3, 20, 13)
    steps = plan_steps(reservation, policy, JourneyFacts(), now)

    assert moments(steps) == {
        INVITATION_KEY: (StepStatus.planned, now),
        ROOM_UPGRADE: (StepStatus.planned, now),
        REMINDER_24H: (StepStatus.skipped, sp(3, 19, 15)),
        REMINDER_3H: (StepStatus.skipped, sp(3, 20, 12)),
        LATE_CHECKOUT: (StepStatus.planned, sp(3, 20, 16)),
        LATE_CHECKOUT_FOLLOW_UP: (StepStatus.planned, sp(3, 20, 20)),
        FEEDBACK_KEY: (StepStatus.planned, sp(3, 21, 14)),
        FEEDBACK_REMINDER_KEY: (StepStatus.planned, sp(3, 23, 14)),
        CLOSE_KEY: (StepStatus.planned, sp(3, 28, 12)),
    }
    assert_sensible(steps, reservation, policy, now)


def test_one_night_stay():
    reservation = stay(arrival=sp(3, 20, 15), departure=sp(3, 21, 12))
    policy = make_policy()
    steps = plan_steps(reservation, policy, JourneyFacts(), BOOKED)

    assert moments(steps)[LATE_CHECKOUT] == (StepStatus.planned, sp(3, 20, 16))
    assert moments(steps)[LATE_CHECKOUT_FOLLOW_UP] == (StepStatus.planned, sp(3, 20, 20))
    assert moments(steps)[FEEDBACK_KEY] == (StepStatus.planned, sp(3, 21, 14))
    assert moments(steps)[CLOSE_KEY] == (StepStatus.planned, sp(3, 28, 12))
    assert_sensible(steps, reservation, policy, BOOKED)


def test_one_night_stay_offers_late_checkout_not_before_arrival():
    # departure - 20h is 14:00, before the 20:00 arrival: the offer waits for the guest.
    reservation = stay(arrival=sp(3, 20, 20), departure=sp(3, 21, 10))
    policy = make_policy()
    steps = plan_steps(reservation, policy, JourneyFacts(), BOOKED)

    assert moments(steps)[LATE_CHECKOUT] == (StepStatus.planned, sp(3, 20, 20))
    # 00:00 is quiet: the follow-up waits until 08:00, still before the 10:00 departure.
    follow_up = by_key(steps)[LATE_CHECKOUT_FOLLOW_UP]
    assert (follow_up.status, follow_up.scheduled_for) == (StepStatus.planned, sp(3, 21, 8))
    assert_sensible(steps, reservation, policy, BOOKED)


def test_night_arrival_follow_up_that_would_land_after_departure_is_skipped():
    # Arrival 23:00: the offer waits for 08:00 (quiet hours), its follow-up (12:00)
    # would come after the 10:00 departure.
    reservation = stay(arrival=sp(3, 20, 23), departure=sp(3, 21, 10))
    policy = make_policy()
    steps = by_key(plan_steps(reservation, policy, JourneyFacts(), BOOKED))

    assert (steps[LATE_CHECKOUT].status, steps[LATE_CHECKOUT].scheduled_for) == (
        StepStatus.planned,
        sp(3, 21, 8),
    )
    follow_up = steps[LATE_CHECKOUT_FOLLOW_UP]
    assert follow_up.status is StepStatus.skipped
    assert "departure" in follow_up.reason
    assert_sensible(list(steps.values()), reservation, policy, BOOKED)


def test_long_stay_of_thirty_nights():
    reservation = stay(arrival=sp(3, 20, 15), nights=30)
    policy = make_policy()
    steps = plan_steps(reservation, policy, JourneyFacts(), BOOKED)

    assert moments(steps) == {
        INVITATION_KEY: (StepStatus.planned, sp(3, 17, 15)),
        ROOM_UPGRADE: (StepStatus.planned, sp(3, 18, 15)),
        REMINDER_24H: (StepStatus.planned, sp(3, 19, 15)),
        REMINDER_3H: (StepStatus.planned, sp(3, 20, 12)),
        LATE_CHECKOUT: (StepStatus.planned, sp(4, 18, 16)),
        LATE_CHECKOUT_FOLLOW_UP: (StepStatus.planned, sp(4, 18, 20)),
        FEEDBACK_KEY: (StepStatus.planned, sp(4, 19, 14)),
        FEEDBACK_REMINDER_KEY: (StepStatus.planned, sp(4, 21, 14)),
        CLOSE_KEY: (StepStatus.planned, sp(4, 26, 12)),
    }
    assert_sensible(steps, reservation, policy, BOOKED)


def test_feedback_that_would_come_after_the_close_is_skipped():
    policy = make_policy(post_stay_feedback_after_departure="P8D")
    steps = by_key(plan(policy=policy))

    assert steps[FEEDBACK_KEY].status is StepStatus.skipped
    assert "journey close" in steps[FEEDBACK_KEY].reason
    assert steps[FEEDBACK_REMINDER_KEY].status is StepStatus.skipped


# -- marketing consent ------------------------------------------------------------


def test_without_marketing_consent_no_offers_and_no_follow_ups():
    steps = by_key(plan(make_reservation(marketing_consent=False)))

    for key in (ROOM_UPGRADE, LATE_CHECKOUT, LATE_CHECKOUT_FOLLOW_UP):
        assert steps[key].status is StepStatus.skipped, key
        assert steps[key].reason == "no marketing consent", key
    # Service messages still go.
    for key in (INVITATION_KEY, REMINDER_24H, REMINDER_3H, FEEDBACK_KEY, FEEDBACK_REMINDER_KEY):
        assert steps[key].status is StepStatus.planned, key
    assert all(
        step.key not in (ROOM_UPGRADE, LATE_CHECKOUT)
        for step in due_steps(list(steps.values()), sp(4, 30, 0))
    )


def test_consent_refused_on_the_check_in_form_stops_offers_the_pms_allowed():
    steps = by_key(plan(stay(), checkin_completed=True, checkin_marketing_consent=False))

    for key in (ROOM_UPGRADE, LATE_CHECKOUT, LATE_CHECKOUT_FOLLOW_UP):
        assert steps[key].status is StepStatus.skipped, key
        assert steps[key].reason == "no marketing consent: the guest declined offers on the check-in form", key
    assert steps[FEEDBACK_KEY].status is StepStatus.planned  # service messages still go


def test_consent_given_on_the_check_in_form_allows_offers_the_pms_had_not():
    reservation = make_reservation(marketing_consent=False)
    steps = by_key(plan(reservation, checkin_completed=True, checkin_marketing_consent=True))

    assert moments([steps[ROOM_UPGRADE], steps[LATE_CHECKOUT], steps[LATE_CHECKOUT_FOLLOW_UP]]) == {
        ROOM_UPGRADE: (StepStatus.planned, sp(3, 18, 15)),
        LATE_CHECKOUT: (StepStatus.planned, sp(3, 22, 16)),
        LATE_CHECKOUT_FOLLOW_UP: (StepStatus.planned, sp(3, 22, 20)),
    }


@pytest.mark.parametrize("pms_consent", [True, False])
def test_without_an_answer_on_the_check_in_form_the_pms_consent_decides(pms_consent):
    reservation = make_reservation(marketing_consent=pms_consent)
    steps = by_key(plan(reservation, checkin_completed=True, checkin_marketing_consent=None))

    expected = StepStatus.planned if pms_consent else StepStatus.skipped
    assert steps[ROOM_UPGRADE].status is expected
    assert steps[ROOM_UPGRADE].reason == (None if pms_consent else "no marketing consent")


def test_consent_refused_at_check_in_during_the_stay_keeps_the_offer_sent_and_stops_its_follow_up():
    sent_at = sp(3, 22, 16)
    before = mark(plan(now=sp(3, 21, 10), stage=Stage.in_stay), LATE_CHECKOUT, at=sent_at)
    steps = by_key(
        plan(now=sp(3, 22, 17), stage=Stage.in_stay, steps=before,
             checkin_completed=True, checkin_marketing_consent=False)
    )

    assert (steps[LATE_CHECKOUT].status, steps[LATE_CHECKOUT].done_at) == (StepStatus.done, sent_at)
    follow_up = steps[LATE_CHECKOUT_FOLLOW_UP]
    assert follow_up.status is StepStatus.skipped
    assert follow_up.reason == "no marketing consent: the guest declined offers on the check-in form"


# -- check-in done ----------------------------------------------------------------


def test_checkin_done_skips_invitation_and_reminders_not_yet_sent():
    first = plan()
    invited_at = sp(3, 17, 15, 0)
    done = mark(first, INVITATION_KEY, at=invited_at)
    steps = by_key(plan(now=sp(3, 18, 9), checkin_completed=True, steps=done))

    invitation = steps[INVITATION_KEY]
    assert (invitation.status, invitation.done_at) == (StepStatus.done, invited_at)
    for key in (REMINDER_24H, REMINDER_3H):
        assert steps[key].status is StepStatus.skipped, key
        assert steps[key].reason == "check-in already done", key
    assert steps[ROOM_UPGRADE].status is StepStatus.planned


def test_checkin_done_before_the_invitation_skips_it_too():
    steps = by_key(plan(checkin_completed=True))

    assert steps[INVITATION_KEY].status is StepStatus.skipped
    assert steps[INVITATION_KEY].reason == "check-in already done"


def test_reminder_already_sent_stays_sent_after_checkin():
    first = plan()
    sent = mark(mark(first, INVITATION_KEY), REMINDER_24H, at=sp(3, 19, 15, 1))
    steps = by_key(plan(now=sp(3, 19, 18), checkin_completed=True, steps=sent))

    assert steps[REMINDER_24H].status is StepStatus.done
    assert steps[REMINDER_24H].done_at == sp(3, 19, 15, 1)
    assert steps[REMINDER_3H].reason == "check-in already done"


# -- a date change ----------------------------------------------------------------


def test_date_change_replans_pending_steps_and_keeps_the_sent_invitation():
    first = plan()
    invited_at = sp(3, 17, 15, 0)
    before = mark(first, INVITATION_KEY, at=invited_at)
    moved = stay(arrival=sp(3, 23, 15))  # three days later, three nights
    now = sp(3, 18, 9)
    steps = plan(moved, now=now, steps=before)

    assert {step.key for step in steps} == {step.key for step in first}
    assert moments(steps) == {
        INVITATION_KEY: (StepStatus.done, sp(3, 17, 15)),
        ROOM_UPGRADE: (StepStatus.planned, sp(3, 21, 15)),
        REMINDER_24H: (StepStatus.planned, sp(3, 22, 15)),
        REMINDER_3H: (StepStatus.planned, sp(3, 23, 12)),
        LATE_CHECKOUT: (StepStatus.planned, sp(3, 25, 16)),
        LATE_CHECKOUT_FOLLOW_UP: (StepStatus.planned, sp(3, 25, 20)),
        FEEDBACK_KEY: (StepStatus.planned, sp(3, 26, 14)),
        FEEDBACK_REMINDER_KEY: (StepStatus.planned, sp(3, 28, 14)),
        CLOSE_KEY: (StepStatus.planned, sp(4, 2, 12)),
    }
    assert by_key(steps)[INVITATION_KEY] == by_key(before)[INVITATION_KEY]
    assert due_steps(steps, now) == []
    assert next_moment(steps) == sp(3, 21, 15)


def test_date_change_to_an_earlier_arrival_skips_reminders_now_in_the_past():
    first = plan()
    before = mark(first, INVITATION_KEY)
    now = sp(3, 17, 18)
    earlier = stay(arrival=sp(3, 18, 10))  # the 24h reminder's new moment, 17th 10:00, has passed
    steps = by_key(plan(earlier, now=now, steps=before))

    assert steps[REMINDER_24H].status is StepStatus.skipped
    assert "already passed" in steps[REMINDER_24H].reason
    assert (steps[REMINDER_3H].status, steps[REMINDER_3H].scheduled_for) == (
        StepStatus.planned,
        sp(3, 18, 8),
    )
    assert steps[REMINDER_3H].reason and "quiet hours" in steps[REMINDER_3H].reason


def test_date_change_brings_back_a_reminder_skipped_as_past():
    now = sp(3, 20, 10)
    first = plan(stay(arrival=sp(3, 20, 20)), now=now)
    assert by_key(first)[REMINDER_24H].status is StepStatus.skipped
    steps = by_key(plan(stay(arrival=sp(3, 25, 20)), now=now, steps=first))

    assert (steps[REMINDER_24H].status, steps[REMINDER_24H].scheduled_for) == (
        StepStatus.planned,
        sp(3, 24, 20),
    )
    assert steps[REMINDER_24H].reason is None


def test_policy_change_drops_planned_steps_it_no_longer_names_but_keeps_sent_ones():
    first = plan(now=sp(3, 19, 0))
    sent = mark(first, ROOM_UPGRADE, at=sp(3, 18, 15))
    fewer_offers = make_policy(upsell_offers=[])
    steps = by_key(plan(policy=fewer_offers, now=sp(3, 19, 0), steps=sent))

    assert steps[ROOM_UPGRADE].status is StepStatus.done
    assert LATE_CHECKOUT not in steps
    assert LATE_CHECKOUT_FOLLOW_UP not in steps


# -- timers firing, a worker that was down ----------------------------------------


def test_reminder_is_due_when_its_timer_fires_at_exactly_its_moment():
    first = plan()
    moment = sp(3, 19, 15)
    steps = plan(now=moment, steps=mark(mark(first, INVITATION_KEY), ROOM_UPGRADE))

    assert moments([by_key(steps)[REMINDER_24H]]) == {REMINDER_24H: (StepStatus.planned, moment)}
    assert [step.key for step in due_steps(steps, moment)] == [REMINDER_24H]


def test_reminder_a_little_late_is_still_sent():
    first = plan()
    steps = plan(now=sp(3, 19, 15, 40), steps=mark(mark(first, INVITATION_KEY), ROOM_UPGRADE))

    assert [step.key for step in due_steps(steps, sp(3, 19, 15, 40))] == [REMINDER_24H]


def test_reminder_missed_by_more_than_the_late_limit_is_skipped():
    first = plan()
    now = sp(3, 19, 15) + LATE_LIMIT + timedelta(minutes=1)
    steps = plan(now=now, steps=mark(mark(first, INVITATION_KEY), ROOM_UPGRADE))

    reminder = by_key(steps)[REMINDER_24H]
    assert reminder.status is StepStatus.skipped
    assert "missed" in reminder.reason
    assert due_steps(steps, now) == []


def test_invitation_missed_while_the_worker_was_down_still_goes_before_arrival():
    first = plan()
    now = sp(3, 19, 11)
    steps = plan(now=now, steps=first)

    assert moments([by_key(steps)[INVITATION_KEY]]) == {INVITATION_KEY: (StepStatus.planned, now)}
    assert due_steps(steps, now)[0].key == INVITATION_KEY


# -- stages -----------------------------------------------------------------------


def test_in_stay_skips_pre_arrival_steps_and_keeps_stay_offers():
    first = plan()
    sent = mark(mark(first, INVITATION_KEY), ROOM_UPGRADE)
    steps = by_key(plan(now=sp(3, 20, 18), stage=Stage.in_stay, steps=sent))

    assert steps[INVITATION_KEY].status is StepStatus.done
    assert steps[ROOM_UPGRADE].status is StepStatus.done
    for key in (REMINDER_24H, REMINDER_3H):
        assert steps[key].status is StepStatus.skipped, key
        assert steps[key].reason == "stage is in_stay", key
    assert moments([steps[LATE_CHECKOUT]]) == {LATE_CHECKOUT: (StepStatus.planned, sp(3, 22, 16))}
    assert steps[FEEDBACK_KEY].status is StepStatus.planned


def test_checked_in_before_any_message_skips_every_pre_arrival_step():
    steps = by_key(plan(now=sp(3, 20, 15), stage=Stage.in_stay))

    for key in PRE_ARRIVAL_KEYS:
        assert steps[key].status is StepStatus.skipped, key
        assert steps[key].reason, key


def test_post_stay_feedback_follows_the_pms_check_out():
    checked_out_at = sp(3, 22, 10, 30)  # a day early
    steps = by_key(plan(now=checked_out_at, stage=Stage.post_stay, checked_out_at=checked_out_at))

    assert moments([steps[FEEDBACK_KEY], steps[FEEDBACK_REMINDER_KEY]]) == {
        FEEDBACK_KEY: (StepStatus.planned, sp(3, 22, 12, 30)),
        FEEDBACK_REMINDER_KEY: (StepStatus.planned, sp(3, 24, 12, 30)),
    }
    for key in (*PRE_ARRIVAL_KEYS, LATE_CHECKOUT, LATE_CHECKOUT_FOLLOW_UP):
        assert steps[key].status is StepStatus.skipped, key
    assert steps[LATE_CHECKOUT].reason == "stage is post_stay"
    assert steps[CLOSE_KEY].scheduled_for == sp(3, 30, 12)


def test_post_stay_feedback_after_a_late_check_out_waits_for_the_morning():
    checked_out_at = sp(3, 23, 21)
    steps = by_key(plan(now=checked_out_at, stage=Stage.post_stay, checked_out_at=checked_out_at))

    assert steps[FEEDBACK_KEY].scheduled_for == sp(3, 24, 8)
    assert "quiet hours" in steps[FEEDBACK_KEY].reason


def test_post_stay_without_pms_event_feedback_follows_departure():
    steps = by_key(plan(now=sp(3, 23, 12), stage=Stage.post_stay))

    assert steps[FEEDBACK_KEY].scheduled_for == sp(3, 23, 14)


def test_feedback_already_received_skips_the_request_and_reminder():
    steps = by_key(plan(now=sp(3, 22, 9), stage=Stage.in_stay, feedback_received=True))

    assert steps[FEEDBACK_KEY].reason == "feedback already received"
    assert steps[FEEDBACK_REMINDER_KEY].reason == "feedback already received"


def test_feedback_reminder_skipped_once_feedback_arrives():
    first = plan(now=sp(3, 23, 12), stage=Stage.post_stay)
    requested = mark(first, FEEDBACK_KEY, at=sp(3, 23, 14))
    steps = by_key(
        plan(now=sp(3, 24, 9), stage=Stage.post_stay, feedback_received=True, steps=requested)
    )

    assert steps[FEEDBACK_KEY].status is StepStatus.done
    assert steps[FEEDBACK_REMINDER_KEY].status is StepStatus.skipped


@pytest.mark.parametrize(
    ("stage", "reason"),
    [(Stage.cancelled, "reservation cancelled"), (Stage.no_show, "guest did not show")],
)
def test_cancel_and_no_show_cancel_every_pending_step(stage, reason):
    first = plan()
    invited_at = sp(3, 17, 15)
    before = mark(first, INVITATION_KEY, at=invited_at)
    now = sp(3, 18, 9) if stage is Stage.cancelled else sp(3, 21, 9)
    steps = plan(now=now, stage=stage, steps=before)

    by = by_key(steps)
    assert by[INVITATION_KEY] == by_key(before)[INVITATION_KEY]
    others = [step for step in steps if step.key != INVITATION_KEY]
    assert {step.key for step in others} == {step.key for step in first} - {INVITATION_KEY}
    for step in others:
        assert step.status is StepStatus.cancelled, step
        assert step.reason == reason, step
    assert due_steps(steps, now) == []
    assert next_moment(steps) is None
    assert plan(now=now + timedelta(hours=1), stage=stage, steps=steps) == steps


def test_cancel_keeps_steps_that_were_skipped_with_their_reason():
    first = plan(make_reservation(marketing_consent=False))
    steps = by_key(
        plan(
            make_reservation(marketing_consent=False),
            now=sp(3, 5, 9),
            stage=Stage.cancelled,
            steps=first,
        )
    )

    assert steps[ROOM_UPGRADE].status is StepStatus.skipped
    assert steps[ROOM_UPGRADE].reason == "no marketing consent"
    assert steps[INVITATION_KEY].status is StepStatus.cancelled


def test_cancel_while_a_message_is_being_sent_cancels_it():
    now = sp(3, 17, 15)
    sending = mark(plan(), INVITATION_KEY, StepStatus.due)
    steps = by_key(plan(now=now, stage=Stage.cancelled, steps=sending))

    assert steps[INVITATION_KEY].status is StepStatus.cancelled
    assert steps[INVITATION_KEY].reason == "reservation cancelled"


def test_cancel_before_anything_was_planned():
    steps = plan(stage=Stage.cancelled)

    assert {step.status for step in steps} == {StepStatus.cancelled}
    assert next_moment(steps) is None


# -- close ------------------------------------------------------------------------


def test_close_at_departure_plus_close_after_departure():
    assert by_key(plan())[CLOSE_KEY].scheduled_for == sp(3, 30, 12)
    longer = make_policy(close_after_departure="P10D")
    assert by_key(plan(policy=longer))[CLOSE_KEY].scheduled_for == sp(4, 2, 12)


def _all_sent_until_feedback() -> list[Step]:
    steps = plan()
    for key in (
        INVITATION_KEY,
        ROOM_UPGRADE,
        REMINDER_24H,
        REMINDER_3H,
        LATE_CHECKOUT,
        LATE_CHECKOUT_FOLLOW_UP,
    ):
        steps = mark(steps, key)
    return mark(steps, FEEDBACK_KEY, at=sp(3, 23, 14))


def test_close_at_once_when_feedback_is_in_and_nothing_is_pending():
    now = sp(3, 23, 19)
    steps = by_key(
        plan(
            now=now, stage=Stage.post_stay, feedback_received=True, steps=_all_sent_until_feedback()
        )
    )

    assert steps[FEEDBACK_REMINDER_KEY].status is StepStatus.skipped
    assert moments([steps[CLOSE_KEY]]) == {CLOSE_KEY: (StepStatus.planned, now)}
    assert [step.key for step in due_steps(list(steps.values()), now)] == [CLOSE_KEY]


def test_close_waits_while_a_staff_message_is_pending():
    now = sp(3, 23, 19)
    manual = Step(
        key="manual:m1", kind=StepKind.manual, status=StepStatus.planned, scheduled_for=now
    )
    steps = by_key(
        plan(
            now=now,
            stage=Stage.post_stay,
            feedback_received=True,
            steps=[*_all_sent_until_feedback(), manual],
        )
    )

    assert steps["manual:m1"] == manual
    assert steps[CLOSE_KEY].scheduled_for == sp(3, 30, 12)


def test_close_waits_for_departure_plus_delay_when_feedback_came_during_the_stay():
    steps = by_key(plan(now=sp(3, 22, 9), stage=Stage.in_stay, feedback_received=True))

    assert steps[CLOSE_KEY].scheduled_for == sp(3, 30, 12)


def test_closed_journey_keeps_its_close_done():
    closed_at = sp(3, 30, 12)
    done = mark(
        plan(now=closed_at, stage=Stage.post_stay, steps=_all_sent_until_feedback()),
        CLOSE_KEY,
        at=closed_at,
    )
    steps = plan(now=closed_at, stage=Stage.completed, steps=done)

    close = by_key(steps)[CLOSE_KEY]
    assert (close.status, close.done_at) == (StepStatus.done, closed_at)
    assert next_moment(steps) is None
    assert plan(now=closed_at + timedelta(days=1), stage=Stage.completed, steps=steps) == steps


def test_journey_completed_early_closes_and_cancels_what_is_left():
    now = sp(3, 24, 9)
    before = plan(now=sp(3, 23, 15), stage=Stage.post_stay, steps=_all_sent_until_feedback())
    steps = by_key(plan(now=now, stage=Stage.completed, feedback_received=True, steps=before))

    assert (steps[CLOSE_KEY].status, steps[CLOSE_KEY].done_at) == (StepStatus.done, now)
    assert steps[FEEDBACK_KEY].status is StepStatus.done
    assert steps[FEEDBACK_REMINDER_KEY].status is StepStatus.cancelled
    assert steps[FEEDBACK_REMINDER_KEY].reason == "journey closed"


# -- staff messages ---------------------------------------------------------------


def test_staff_messages_stay_in_the_plan_in_time_order():
    now = sp(3, 10, 9)
    manual = Step(
        key="manual:m1", kind=StepKind.manual, status=StepStatus.planned, scheduled_for=now
    )
    steps = plan(now=now, steps=[*plan(), manual])

    assert steps[0] == manual
    assert due_steps(steps, now) == [manual]
    sent = manual.model_copy(update={"status": StepStatus.done, "done_at": now})
    assert by_key(plan(now=now, steps=[*plan(), sent]))["manual:m1"] == sent


# -- helpers ----------------------------------------------------------------------


def test_due_steps_are_the_planned_steps_whose_moment_has_come_in_order():
    steps = plan(now=sp(3, 18, 16), steps=mark(plan(), INVITATION_KEY))

    assert [step.key for step in due_steps(steps, sp(3, 18, 16))] == [ROOM_UPGRADE]
    assert [step.key for step in due_steps(steps, sp(3, 20, 12))] == [
        ROOM_UPGRADE,
        REMINDER_24H,
        REMINDER_3H,
    ]
    assert due_steps(steps, sp(3, 18, 14, 59)) == []


def test_due_steps_ignore_skipped_done_and_in_flight_steps():
    now = sp(3, 20, 10)
    steps = plan(stay(arrival=sp(3, 20, 20)), now=now)
    steps = mark(steps, ROOM_UPGRADE, StepStatus.due)

    keys = [step.key for step in due_steps(steps, sp(4, 30, 0))]
    assert REMINDER_24H not in keys  # skipped
    assert ROOM_UPGRADE not in keys  # being sent
    assert keys[0] == INVITATION_KEY


def test_next_moment_is_the_earliest_planned_moment():
    assert next_moment(plan()) == sp(3, 17, 15)
    assert next_moment(mark(plan(), INVITATION_KEY)) == sp(3, 18, 15)
    assert next_moment([]) is None
    skipped_only = [
        Step(
            key=REMINDER_3H,
            kind=StepKind.checkin_reminder,
            status=StepStatus.skipped,
            scheduled_for=sp(3, 1, 1),
        )
    ]
    assert next_moment(skipped_only) is None


@pytest.mark.parametrize(
    ("offset", "text"),
    [
        (timedelta(hours=24), "PT24H"),
        (timedelta(hours=3), "PT3H"),
        (timedelta(hours=48), "P2D"),
        (timedelta(minutes=90), "PT90M"),
        (timedelta(seconds=45), "PT45S"),
    ],
)
def test_step_keys_use_short_iso_durations(offset, text):
    assert iso_duration(offset) == text
    assert reminder_key(offset) == f"checkin_reminder:{text}"


def test_step_keys_follow_the_contract():
    assert {step.key for step in plan()} == {
        "checkin_invitation",
        "checkin_reminder:PT24H",
        "checkin_reminder:PT3H",
        "upsell:room_upgrade",
        "upsell:late_checkout",
        "upsell_follow_up:late_checkout",
        "guest_post_stay_feedback",
        "feedback_reminder",
        "close",
    }


def test_planner_accepts_now_in_any_zone():
    assert (
        plan(now=BOOKED) == plan(now=BOOKED.astimezone(TOKYO)) == plan(now=BOOKED.astimezone(UTC))
    )


# -- whole journeys, run the way the workflow runs them ---------------------------

ZONES = [
    "America/Sao_Paulo",
    "Asia/Tokyo",
    "Europe/Lisbon",
    "America/New_York",
    "Australia/Lord_Howe",
    "UTC",
]
START = datetime(2025, 1, 1, tzinfo=UTC)


def _after_quiet_hours(
    moment: datetime, policy: HotelPolicy, kind: StepKind | None = None, arrival: datetime | None = None
) -> datetime:
    """Where quiet hours put a moment, written independently of the planner: a
    check-in message waits at most until the arrival margin, never before its moment."""
    quiet = policy.quiet_hours
    if quiet is None or quiet.start == quiet.end:
        return moment
    end = _end_of_quiet_hours(moment, policy)
    if kind in (StepKind.checkin_invitation, StepKind.checkin_reminder) and arrival is not None:
        return max(moment, min(end, arrival - quiet.arrival_margin))
    return end


def _end_of_quiet_hours(moment: datetime, policy: HotelPolicy) -> datetime:
    quiet = policy.quiet_hours
    assert quiet is not None
    zone = ZoneInfo(policy.hotel_timezone)
    local = moment.astimezone(zone)
    clock = local.time()
    if quiet.start < quiet.end:
        inside, next_day = quiet.start <= clock < quiet.end, False
    else:
        inside, next_day = clock >= quiet.start or clock < quiet.end, clock >= quiet.start
    if not inside:
        return moment
    day = local.date() + timedelta(days=1 if next_day else 0)
    return datetime.combine(day, quiet.end, tzinfo=zone).astimezone(UTC)


def simulate(
    reservation: Reservation,
    policy: HotelPolicy,
    booked: datetime,
    *,
    checkin_at: datetime | None = None,
    checkin_consent: bool | None = None,
    feedback_after: timedelta | None = None,
    checked_out_early_by: timedelta | None = None,
    answer_after: timedelta | None = None,
    change: tuple[datetime, Reservation] | None = None,
) -> tuple[list[Step], list[tuple[Step, datetime, Reservation]]]:
    """Run a journey as the workflow does: re-plan, send the first due step the
    instant it is due (done), else sleep to the next moment or stage boundary.
    Returns the final plan and every step carried out, when, under which
    reservation."""
    now, stage, steps, sent = booked, Stage.pre_arrival, [], []
    checked_out_at: datetime | None = None
    answered: dict[str, datetime] = {}

    def feedback_at() -> datetime | None:
        end = checked_out_at or reservation.departure
        return end + feedback_after if feedback_after is not None else None

    for _ in range(200):
        if change is not None and now >= change[0]:
            reservation, change = change[1], None
        checkout = (
            reservation.departure - checked_out_early_by
            if checked_out_early_by is not None
            else None
        )
        if stage is Stage.pre_arrival and now >= reservation.arrival:
            stage = Stage.in_stay
        if stage is Stage.in_stay and checkout is not None and now >= checkout:
            stage, checked_out_at = Stage.post_stay, checkout
        if stage is Stage.in_stay and now >= reservation.departure:
            stage = Stage.post_stay
        received = feedback_at()
        checked_in = checkin_at is not None and now >= checkin_at
        facts = JourneyFacts(
            stage=stage,
            checkin_completed=checked_in,
            checkin_marketing_consent=checkin_consent if checked_in else None,
            checked_out_at=checked_out_at,
            answered_offers=[offer for offer, at in answered.items() if now >= at],
            feedback_received=stage is Stage.post_stay and received is not None and now >= received,
            steps=steps,
        )
        steps = plan_steps(reservation, policy, facts, now)
        assert_sensible(steps, reservation, policy, now)
        assert (
            plan_steps(reservation, policy, facts.model_copy(update={"steps": steps}), now) == steps
        )
        due = due_steps(steps, now)
        if due:
            step = due[0]
            sent.append((step, now, reservation))
            steps = mark(steps, step.key, at=now)
            if step.kind is StepKind.upsell and answer_after is not None:
                answered[step.offer] = now + answer_after
            if step.kind is StepKind.close:
                facts = facts.model_copy(update={"stage": Stage.completed, "steps": steps})
                final = plan_steps(reservation, policy, facts, now)
                assert final == plan_steps(
                    reservation, policy, facts.model_copy(update={"steps": final}), now
                )
                return final, sent
            continue
        boundary = {
            Stage.pre_arrival: reservation.arrival,
            Stage.in_stay: checkout or reservation.departure,
        }
        events = [next_moment(steps), boundary.get(stage), checkin_at, received, *answered.values()]
        if change is not None:
            events.append(change[0])
        now = min(moment for moment in events if moment is not None and moment > now)
    raise AssertionError(f"the journey did not close: {steps}")


def test_a_whole_normal_stay_sends_each_message_once_at_its_moment():
    final, sent = simulate(stay(), make_policy(), BOOKED)

    assert [(step.key, at) for step, at, _ in sent] == [
        (INVITATION_KEY, sp(3, 17, 15)),
        (ROOM_UPGRADE, sp(3, 18, 15)),
        (REMINDER_24H, sp(3, 19, 15)),
        (REMINDER_3H, sp(3, 20, 12)),
        (LATE_CHECKOUT, sp(3, 22, 16)),
        (LATE_CHECKOUT_FOLLOW_UP, sp(3, 22, 20)),
        (FEEDBACK_KEY, sp(3, 23, 14)),
        (FEEDBACK_REMINDER_KEY, sp(3, 25, 14)),
        (CLOSE_KEY, sp(3, 30, 12)),
    ]
    assert {step.status for step in final} == {StepStatus.done}


def test_a_stay_with_early_checkin_answers_and_quick_feedback_closes_early():
    final, sent = simulate(
        stay(),
        make_policy(),
        BOOKED,
        checkin_at=sp(3, 18, 9),
        answer_after=timedelta(hours=1),
        feedback_after=timedelta(hours=5),
    )

    assert [(step.key, at) for step, at, _ in sent] == [
        (INVITATION_KEY, sp(3, 17, 15)),
        (ROOM_UPGRADE, sp(3, 18, 15)),
        (LATE_CHECKOUT, sp(3, 22, 16)),
        (FEEDBACK_KEY, sp(3, 23, 14)),
        (CLOSE_KEY, sp(3, 23, 17)),  # as soon as the feedback came in
    ]
    steps = by_key(final)
    assert steps[REMINDER_24H].reason == "check-in already done"
    assert steps[LATE_CHECKOUT_FOLLOW_UP].reason == "offer answered"
    assert steps[FEEDBACK_REMINDER_KEY].reason == "feedback already received"


def test_a_date_change_after_the_invitation_sends_the_rest_at_the_new_moments():
    moved = stay(arrival=sp(3, 23, 15))
    final, sent = simulate(stay(), make_policy(), BOOKED, change=(sp(3, 18, 9), moved))

    assert [(step.key, at) for step, at, _ in sent] == [
        (INVITATION_KEY, sp(3, 17, 15)),
        (ROOM_UPGRADE, sp(3, 21, 15)),
        (REMINDER_24H, sp(3, 22, 15)),
        (REMINDER_3H, sp(3, 23, 12)),
        (LATE_CHECKOUT, sp(3, 25, 16)),
        (LATE_CHECKOUT_FOLLOW_UP, sp(3, 25, 20)),
        (FEEDBACK_KEY, sp(3, 26, 14)),
        (FEEDBACK_REMINDER_KEY, sp(3, 28, 14)),
        (CLOSE_KEY, sp(4, 2, 12)),
    ]
    assert by_key(final)[INVITATION_KEY].done_at == sp(3, 17, 15)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def policies(draw) -> HotelPolicy:
    hours = st.integers(0, 24 * 7).map(lambda h: timedelta(hours=h))
    quiet = draw(
        st.one_of(
            st.none(),
            st.just({"start": "22:00", "end": "08:00"}),
            st.tuples(st.integers(0, 24 * 60 - 1), st.integers(0, 24 * 60 - 1)).map(
                lambda pair: {"start": _clock(pair[0]), "end": _clock(pair[1])}
            ),
            st.tuples(st.sampled_from(["PT1H", "PT2H", "PT6H", "P1D"]), st.sampled_from(["wait", "arrival_margin"])).map(
                lambda pair: {"start": "21:00", "end": "09:00", "arrival_margin": pair[0],
                              "messages": {"checkin_reminder": pair[1], "checkin_invitation": pair[1]}}
            ),
        )
    )
    offers = draw(
        st.sampled_from(
            [
                None,
                [],
                [{"offer": "breakfast", "send_before_arrival": "PT6H", "follow_up_after": "PT2H"}],
                [{"offer": "spa", "send_before_departure": "P2D", "follow_up_after": "P1D"}],
            ]
        )
    )
    overrides = {
        "hotel_timezone": draw(st.sampled_from(ZONES)),
        "quiet_hours": quiet,
        "checkin_invite_before_arrival": draw(hours),
        "checkin_reminders_before_arrival": draw(
            st.lists(
                st.sampled_from(["PT30M", "PT3H", "PT24H", "P2D", "PT100H"]),
                max_size=3,
                unique=True,
            )
        ),
        "post_stay_feedback_after_departure": draw(hours),
        "feedback_reminder_after": draw(st.one_of(st.none(), hours)),
        "close_after_departure": draw(hours.filter(bool)),
    }
    if offers is not None:
        overrides["upsell_offers"] = offers
    return make_policy(**overrides)


@st.composite
def journeys(draw) -> dict:
    arrival = START + timedelta(minutes=draw(st.integers(0, 2 * 365 * 24 * 60)))
    departure = arrival + timedelta(minutes=draw(st.integers(60, 40 * 24 * 60)))
    booked = arrival - timedelta(minutes=draw(st.integers(1, 60 * 24 * 60)))
    reservation = make_reservation(
        arrival=arrival, departure=departure, marketing_consent=draw(st.booleans())
    )
    fraction = st.floats(0, 1.2)
    journey = {
        "reservation": reservation,
        "policy": draw(policies()),
        "booked": booked,
        "checkin_at": draw(
            st.one_of(st.none(), fraction.map(lambda f: booked + (arrival - booked) * f))
        ),
        "checkin_consent": draw(st.one_of(st.none(), st.booleans())),
        "feedback_after": draw(
            st.one_of(st.none(), st.integers(0, 12 * 24 * 60).map(lambda m: timedelta(minutes=m)))
        ),
        "checked_out_early_by": draw(
            st.one_of(st.none(), st.floats(0, 0.9).map(lambda f: (departure - arrival) * f))
        ),
        "answer_after": draw(
            st.one_of(st.none(), st.integers(0, 48 * 60).map(lambda m: timedelta(minutes=m)))
        ),
    }
    if draw(st.booleans()):
        at = booked + (arrival - booked) * draw(st.floats(0, 1))
        new_arrival = arrival + timedelta(minutes=draw(st.integers(-3 * 24 * 60, 5 * 24 * 60)))
        new_arrival = max(new_arrival, at + timedelta(minutes=1))
        new_departure = new_arrival + timedelta(minutes=draw(st.integers(60, 20 * 24 * 60)))
        journey["change"] = (
            at,
            reservation.model_copy(update={"arrival": new_arrival, "departure": new_departure}),
        )
    return journey


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journeys())
def test_any_journey_sends_each_message_once_on_time_and_in_quiet_hours_only_as_its_kind_allows(journey):
    policy = journey["policy"]
    final, sent = simulate(**journey)

    keys = [step.key for step, _, _ in sent]
    assert len(keys) == len(set(keys)), keys
    assert keys[-1] == CLOSE_KEY
    for step, at, reservation in sent:
        if step.kind is StepKind.close:
            assert at <= reservation.departure + policy.close_after_departure
            continue
        assert at < _cutoff(step, reservation, policy), (step, at)
        assert _after_quiet_hours(at, policy, step.kind, reservation.arrival) == at, (step, at)
        if step.kind in (StepKind.checkin_invitation, StepKind.checkin_reminder):
            assert journey["checkin_at"] is None or at < journey["checkin_at"], (step, at)
        if step.kind is StepKind.checkin_reminder:
            offset = next(
                o for o in policy.checkin_reminders_before_arrival if reminder_key(o) == step.key
            )
            expected = _after_quiet_hours(reservation.arrival - offset, policy, step.kind, reservation.arrival)
            # Never before its moment as quiet hours put it; when that moment passed before
            # the booking, or other steps fell due with it, it goes right after them.
            assert at >= min(expected, journey["booked"]), (step, at)
        if step.kind in (StepKind.upsell, StepKind.upsell_follow_up):
            assert _consent_at(at, reservation, journey["checkin_at"], journey["checkin_consent"]), (step, at)
    done = {step.key: at for step, at, _ in sent}
    for step in final:
        assert step.status in (StepStatus.done, StepStatus.skipped, StepStatus.cancelled), step
        if step.status is StepStatus.done:
            assert step.done_at == done[step.key]
        else:
            assert step.reason, step


def _consent_at(
    at: datetime, reservation: Reservation, checkin_at: datetime | None, checkin_consent: bool | None
) -> bool:
    """The marketing consent in force at `at`: the check-in form's answer once given, else the PMS's."""
    if checkin_at is not None and at >= checkin_at and checkin_consent is not None:
        return checkin_consent
    return reservation.guest.marketing_consent


# -- re-planning after a date change ----------------------------------------------


def carry_out_until(reservation: Reservation, policy: HotelPolicy, booked: datetime, until: datetime) -> list[Step]:
    """The plan as it stands at `until` (before arrival), every step carried out the
    instant it was due, the way the workflow does."""
    now, steps = booked, []
    for _ in range(100):
        steps = plan_steps(reservation, policy, JourneyFacts(steps=steps), now)
        due = due_steps(steps, now)
        if due:
            steps = mark(steps, due[0].key, at=now)
            continue
        upcoming = next_moment(steps)
        if upcoming is None or upcoming > until:
            return steps
        now = upcoming
    raise AssertionError(f"steps kept coming due: {steps}")


@st.composite
def date_changes(draw) -> tuple[HotelPolicy, Reservation, datetime, datetime, Reservation]:
    """A journey, the moment its dates change (before arrival), and the new dates."""
    journey = draw(journeys())
    reservation, booked = journey["reservation"], journey["booked"]
    changed_at = booked + (reservation.arrival - booked) * draw(st.floats(0, 1, exclude_max=True))
    arrival = reservation.arrival + timedelta(minutes=draw(st.integers(-3 * 24 * 60, 5 * 24 * 60)))
    arrival = max(arrival, changed_at + timedelta(minutes=1))
    departure = arrival + timedelta(minutes=draw(st.integers(60, 20 * 24 * 60)))
    moved = reservation.model_copy(update={"arrival": arrival, "departure": departure})
    return journey["policy"], reservation, booked, changed_at, moved


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(date_changes())
def test_a_date_change_never_resends_a_done_step_and_never_loses_a_valid_one(change):
    policy, reservation, booked, changed_at, moved = change
    before = carry_out_until(reservation, policy, booked, changed_at)
    done = {step.key: step for step in before if step.status is StepStatus.done}

    replanned = by_key(plan_steps(moved, policy, JourneyFacts(steps=before), changed_at))
    # What a journey booked with the new dates at that moment would plan.
    fresh = by_key(plan_steps(moved, policy, JourneyFacts(), changed_at))

    for key, step in done.items():
        assert replanned[key] == step, key  # still done, at the same moment: never sent again
    assert not {step.key for step in due_steps(list(replanned.values()), moved.departure)} & set(done)
    for key, step in fresh.items():
        if key in done:
            continue
        assert key in replanned, key
        if step.status is StepStatus.planned:
            assert replanned[key].status is StepStatus.planned, (key, replanned[key], step)
