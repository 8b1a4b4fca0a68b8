"""What to send when: a pure function of reservation, policy, journey facts and now.

`plan_steps` returns every step of a journey, ordered by when it is due, each
`planned` (with its moment), `skipped` (with the reason) or, for steps already
settled (done, failed, cancelled), exactly as they were. The workflow calls it
whenever something changes and sends the steps whose moment has come; it never
reads a clock or the world, so it is unit-tested without Temporal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from guest_journey.journeys import Stage, Step, StepKind, StepStatus
from guest_journey.policy import HotelPolicy, UpsellOffer, iso_duration
from guest_journey.reservations import Reservation
from workflows.quiet_hours import out_of_quiet_hours

# A reminder or follow-up later than this (a worker that was down for a while)
# is skipped rather than sent late: they only make sense at their moment.
LATE_LIMIT = timedelta(hours=1)

CLOSE_KEY = "close"
INVITATION_KEY = StepKind.checkin_invitation.value
FEEDBACK_KEY = StepKind.guest_post_stay_feedback.value
FEEDBACK_REMINDER_KEY = StepKind.feedback_reminder.value

NO_CONSENT = "no marketing consent"
NO_CONSENT_ON_CHECKIN = "no marketing consent: the guest declined offers on the check-in form"

_KIND_ORDER = {kind: index for index, kind in enumerate(StepKind)}


class JourneyFacts(BaseModel):
    """What has happened in a journey so far, as the planner needs it."""

    stage: Stage = Stage.pre_arrival
    checkin_completed: bool = False
    # The guest's own answer on the check-in form ("send me offers"); None when
    # not given. When given it outranks the reservation's `marketing_consent`.
    checkin_marketing_consent: bool | None = None
    checked_out_at: datetime | None = None
    answered_offers: list[str] = Field(default_factory=list)
    feedback_received: bool = False
    unsubscribed: bool = False
    steps: list[Step] = Field(default_factory=list)


def reminder_key(offset: timedelta) -> str:
    return f"{StepKind.checkin_reminder.value}:{iso_duration(offset)}"


def upsell_key(offer: str) -> str:
    return f"{StepKind.upsell.value}:{offer}"


def follow_up_key(offer: str) -> str:
    return f"{StepKind.upsell_follow_up.value}:{offer}"


def stage_by_time(stage: Stage, reservation: Reservation, now: datetime) -> Stage:
    """The stage once time has passed: arrival moves a journey in stay, departure to post-stay
    (without waiting for the PMS's check-in and check-out events)."""
    if stage is Stage.pre_arrival and now >= reservation.arrival:
        stage = Stage.in_stay
    if stage is Stage.in_stay and now >= reservation.departure:
        stage = Stage.post_stay
    return stage


def close_moment(reservation: Reservation, policy: HotelPolicy) -> datetime:
    return _utc(reservation.departure) + policy.close_after_departure


def plan_steps(
    reservation: Reservation, policy: HotelPolicy, facts: JourneyFacts, now: datetime,
    *, quiet_hours_by_kind: bool = True,
) -> list[Step]:
    """Every step of the journey, ordered by due moment; settled steps unchanged.

    Quiet hours treat each kind of message as the policy's `quiet_hours.messages`
    says; with `quiet_hours_by_kind` False every message waits for their end (the
    rule before per-kind quiet hours, which journeys planned under it replay)."""
    return _Planner(reservation, policy, facts, _utc(now), quiet_hours_by_kind).plan()


def due_steps(steps: list[Step], now: datetime) -> list[Step]:
    """The planned steps whose moment has come, in order."""
    return [
        step
        for step in steps
        if step.status is StepStatus.planned and step.scheduled_for and step.scheduled_for <= now
    ]


def next_moment(steps: list[Step]) -> datetime | None:
    moments = [step.scheduled_for for step in steps if step.status is StepStatus.planned and step.scheduled_for]
    return min(moments) if moments else None


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


class _Planner:
    def __init__(
        self, reservation: Reservation, policy: HotelPolicy, facts: JourneyFacts, now: datetime,
        quiet_hours_by_kind: bool,
    ) -> None:
        self.quiet_hours_by_kind = quiet_hours_by_kind
        self.reservation = reservation
        self.policy = policy
        self.facts = facts
        self.now = now
        self.arrival = _utc(reservation.arrival)
        self.departure = _utc(reservation.departure)
        self.close_at = close_moment(reservation, policy)
        self.previous = {step.key: step for step in facts.steps}
        self.steps: dict[str, Step] = {}

    # -- the whole plan ---------------------------------------------------------

    def plan(self) -> list[Step]:
        self._checkin_invitation()
        for offset in sorted(self.policy.checkin_reminders_before_arrival, reverse=True):
            self._checkin_reminder(offset)
        for offer in self.policy.upsell_offers:
            self._upsell(offer)
            if offer.follow_up_after is not None:
                self._upsell_follow_up(offer)
        self._feedback()
        if self.policy.feedback_reminder_after is not None:
            self._feedback_reminder()
        for key, step in self.previous.items():
            if key not in self.steps:
                self._keep_or_drop(step)
        self._close()
        if self.facts.stage.is_final:
            self._stop_pending()
        return sorted(self.steps.values(), key=_order)

    # -- one rule per step kind -------------------------------------------------

    def _checkin_invitation(self) -> None:
        key = INVITATION_KEY
        if self._settled(key):
            return
        due = self.arrival - self.policy.checkin_invite_before_arrival  # skipped steps keep a stable moment
        if self.facts.checkin_completed:
            return self._skip(key, StepKind.checkin_invitation, due, "check-in already done")
        if self.facts.stage is not Stage.pre_arrival:
            return self._skip(key, StepKind.checkin_invitation, due, f"stage is {self.facts.stage}")
        if self.now >= self.arrival:
            return self._skip(key, StepKind.checkin_invitation, due, "arrival has passed")
        self._timed(
            key, StepKind.checkin_invitation, max(due, self.now), cutoff=self.arrival, cutoff_name="arrival"
        )

    def _checkin_reminder(self, offset: timedelta) -> None:
        key = reminder_key(offset)
        if self._settled(key):
            return
        due = self.arrival - offset
        if self.facts.checkin_completed:
            return self._skip(key, StepKind.checkin_reminder, due, "check-in already done")
        if self.facts.stage is not Stage.pre_arrival:
            return self._skip(key, StepKind.checkin_reminder, due, f"stage is {self.facts.stage}")
        self._timed(
            key, StepKind.checkin_reminder, due, cutoff=self.arrival, cutoff_name="arrival", late=False
        )

    def _upsell(self, offer: UpsellOffer) -> None:
        key = upsell_key(offer.offer)
        if self._settled(key):
            return
        due, cutoff, cutoff_name, stage = self._offer_window(offer)
        skip = self._offer_obstacle(offer, stage, cutoff)
        if skip:
            return self._skip(key, StepKind.upsell, due, skip, offer=offer.offer)
        self._timed(
            key, StepKind.upsell, max(due, self.now), cutoff=cutoff, cutoff_name=cutoff_name,
            offer=offer.offer, not_before=self.arrival if stage is Stage.in_stay else None,
        )

    def _upsell_follow_up(self, offer: UpsellOffer) -> None:
        key = follow_up_key(offer.offer)
        if self._settled(key):
            return
        assert offer.follow_up_after is not None
        _, cutoff, cutoff_name, stage = self._offer_window(offer)
        base = _sent_or_sending_at(
            self.steps.get(upsell_key(offer.offer)) or self.previous.get(upsell_key(offer.offer))
        )
        due = base + offer.follow_up_after if base else None
        skip = self._offer_obstacle(offer, stage, cutoff)
        if skip:
            return self._skip(key, StepKind.upsell_follow_up, due, skip, offer=offer.offer)
        if due is None:
            return self._skip(key, StepKind.upsell_follow_up, due, "offer not sent", offer=offer.offer)
        self._timed(
            key, StepKind.upsell_follow_up, due, cutoff=cutoff, cutoff_name=cutoff_name,
            late=False, offer=offer.offer,
        )

    def _feedback(self) -> None:
        key = FEEDBACK_KEY
        if self._settled(key):
            return
        due = (self.facts.checked_out_at or self.departure) + self.policy.post_stay_feedback_after_departure
        if self.facts.feedback_received:
            return self._skip(key, StepKind.guest_post_stay_feedback, due, "feedback already received")
        if self.facts.stage.is_final:
            return self._skip(key, StepKind.guest_post_stay_feedback, due, f"stage is {self.facts.stage}")
        self._timed(
            key, StepKind.guest_post_stay_feedback, max(due, self.now) if self._post_stay else due,
            cutoff=self.close_at, cutoff_name="journey close",
        )

    def _feedback_reminder(self) -> None:
        key = FEEDBACK_REMINDER_KEY
        if self._settled(key):
            return
        assert self.policy.feedback_reminder_after is not None
        base = _sent_or_sending_at(self.steps.get(FEEDBACK_KEY) or self.previous.get(FEEDBACK_KEY))
        due = base + self.policy.feedback_reminder_after if base else None
        if self.facts.feedback_received:
            return self._skip(key, StepKind.feedback_reminder, due, "feedback already received")
        if base is None or due is None:
            return self._skip(key, StepKind.feedback_reminder, due, "feedback request not sent")
        self._timed(
            key, StepKind.feedback_reminder, due, cutoff=self.close_at, cutoff_name="journey close",
            late=False,
        )

    def _close(self) -> None:
        if self._settled(CLOSE_KEY):
            return
        due = self.close_at
        nothing_pending = not any(
            step.status in (StepStatus.planned, StepStatus.due) and step.kind is not StepKind.close
            for step in self.steps.values()
        )
        if self._post_stay and self.facts.feedback_received and nothing_pending:
            due = min(due, self.now)
        self.steps[CLOSE_KEY] = Step(
            key=CLOSE_KEY, kind=StepKind.close, status=StepStatus.planned, scheduled_for=due
        )

    # -- shared rules -----------------------------------------------------------

    @property
    def _post_stay(self) -> bool:
        return self.facts.stage is Stage.post_stay

    def _offer_window(self, offer: UpsellOffer) -> tuple[datetime, datetime, str, Stage]:
        if offer.send_before_arrival is not None:
            return self.arrival - offer.send_before_arrival, self.arrival, "arrival", Stage.pre_arrival
        assert offer.send_before_departure is not None
        return self.departure - offer.send_before_departure, self.departure, "departure", Stage.in_stay

    def _offer_obstacle(self, offer: UpsellOffer, stage: Stage, cutoff: datetime) -> str | None:
        if offer.offer in self.facts.answered_offers:
            return "offer answered"
        no_consent = self._no_marketing_consent()
        if no_consent:
            return no_consent
        if self.facts.unsubscribed:
            return "the guest unsubscribed from offers"
        current = self.facts.stage
        fits = current is stage or (stage is Stage.in_stay and current is Stage.pre_arrival)
        if not fits:
            return f"stage is {current}"
        if self.now >= cutoff:
            return "its moment has passed"
        return None

    def _no_marketing_consent(self) -> str | None:
        """Why offers may not be sent, if they may not: the guest's answer on the
        check-in form when there is one (the more recent, more direct statement),
        else the reservation's consent from the PMS."""
        answer = self.facts.checkin_marketing_consent
        if answer is None:
            return None if self.reservation.guest.marketing_consent else NO_CONSENT
        return None if answer else NO_CONSENT_ON_CHECKIN

    def _timed(
        self,
        key: str,
        kind: StepKind,
        due: datetime,
        *,
        cutoff: datetime,
        cutoff_name: str,
        late: bool = True,
        offer: str | None = None,
        not_before: datetime | None = None,
    ) -> None:
        """Plan a step at `due`, moved out of quiet hours; skip it if that is too late."""
        if not_before is not None and due < not_before:
            due = not_before
        moved, reason = out_of_quiet_hours(
            due, kind, self.policy, arrival=self.arrival, by_kind=self.quiet_hours_by_kind
        )
        if moved >= cutoff:
            why = reason or f"its moment is not before {cutoff_name}"
            return self._skip(key, kind, moved, f"{why}; not sent after {cutoff_name}", offer=offer)
        if moved <= self.now and not late:
            before = self.previous.get(key)
            was_planned_then = before is not None and before.status is StepStatus.planned and (
                before.scheduled_for == moved
            )
            if not was_planned_then and moved < self.now:
                return self._skip(key, kind, moved, "its moment had already passed when planned", offer=offer)
            if self.now - moved > LATE_LIMIT:
                return self._skip(key, kind, moved, f"missed its moment by {self.now - moved}", offer=offer)
        self.steps[key] = Step(
            key=key, kind=kind, status=StepStatus.planned, scheduled_for=moved, reason=reason, offer=offer
        )

    def _settled(self, key: str) -> bool:
        before = self.previous.get(key)
        if before is not None and (before.status.is_settled or before.status is StepStatus.due):
            self.steps[key] = before
            return True
        return False

    def _skip(
        self, key: str, kind: StepKind, when: datetime | None, reason: str, offer: str | None = None
    ) -> None:
        self.steps[key] = Step(
            key=key, kind=kind, status=StepStatus.skipped, scheduled_for=when, reason=reason, offer=offer
        )

    def _keep_or_drop(self, step: Step) -> None:
        """Steps the policy no longer names: settled and manual ones stay, the rest go."""
        if step.status.is_settled or step.status is StepStatus.due or step.kind is StepKind.manual:
            self.steps[step.key] = step

    def _stop_pending(self) -> None:
        """A final stage: every step still pending is cancelled (the close of a
        completed journey is done); settled steps, and steps skipped before the
        stage changed, keep what they were."""
        stage = self.facts.stage
        reason = {
            Stage.cancelled: "reservation cancelled",
            Stage.no_show: "guest did not show",
            Stage.completed: "journey closed",
        }[stage]
        for key, step in self.steps.items():
            if step.status.is_settled:
                continue
            if step.kind is StepKind.close and stage is Stage.completed:
                self.steps[key] = step.model_copy(
                    update={"status": StepStatus.done, "done_at": self.now, "reason": None}
                )
                continue
            before = self.previous.get(key)
            if before is not None and before.status is StepStatus.skipped:
                self.steps[key] = before
                continue
            self.steps[key] = step.model_copy(update={"status": StepStatus.cancelled, "reason": reason})


def _sent_or_sending_at(step: Step | None) -> datetime | None:
    """When a step's message went (or is going) out: the base of its follow-up."""
    if step is None:
        return None
    if step.status in (StepStatus.done, StepStatus.in_doubt):  # in doubt: it may have arrived
        return step.done_at
    if step.status in (StepStatus.planned, StepStatus.due):
        return step.scheduled_for
    return None


def _order(step: Step) -> tuple[datetime, int, str]:
    moment = step.scheduled_for or step.done_at or datetime.max.replace(tzinfo=UTC)
    return (moment, _KIND_ORDER[step.kind], step.key)
