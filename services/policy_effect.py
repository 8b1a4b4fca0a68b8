"""What a draft policy would change: one reservation's schedule side by side with the
policy in force, and the effect on running journeys (the staff page `/policy`).

Both plans come from `services.policy_preview.plan_preview`, the preview's own
function, so a schedule here is exactly the one `guest-journey policy preview`
prints. A running journey is re-planned from its read-model rows
(`read_model_queries.running_journeys`): its stage, check-in, feedback, answered
offers and steps. Its steps already sent, failed or cancelled are kept as they
are by the planner, so only steps not yet sent can gain, lose or move — the
planner's rule for a journey that adopts a new policy. Facts the rows do not
hold are read from the steps: the guest is taken to have marketing consent when
an offer of the journey was planned or sent, else not (no offer changes then).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from guest_journey.journeys import CheckinStatus, Stage, Step, StepKind, StepStatus, UpsellStatus
from guest_journey.policy import JourneyPolicy
from guest_journey.read_model_queries import RunningJourney
from guest_journey.reservations import Guest, Reservation
from services.policy_preview import PreviewStep, plan_preview
from workflows.plan import JourneyFacts

EXAMPLES_PER_STEP = 3
_SENT = (StepStatus.done, StepStatus.in_doubt)
_OFFER_KINDS = (StepKind.upsell, StepKind.upsell_follow_up)


class Change(StrEnum):
    gains = "gains"  # not sent under the policy in force, sent under the draft
    loses = "loses"  # sent under the policy in force, not under the draft
    moves = "moves"  # sent under both, at another moment
    same = "same"


@dataclass(frozen=True)
class ScheduleRow:
    """One step of a reservation under the policy in force and under the draft."""

    key: str
    current: PreviewStep | None
    draft: PreviewStep | None
    change: Change


@dataclass(frozen=True)
class Example:
    reservation_id: str
    hotel_id: str
    change: Change
    before: str  # the moment and status under the policy in force
    after: str


@dataclass
class StepEffect:
    """How many running journeys gain, lose or move one step (by its key)."""

    key: str
    gains: int = 0
    loses: int = 0
    moves: int = 0
    examples: list[Example] = field(default_factory=list)


@dataclass
class LiveEffect:
    journeys: int = 0  # running journeys re-planned
    changed: int = 0  # of those, the journeys with at least one step that changes
    steps: list[StepEffect] = field(default_factory=list)


def compare_schedules(
    current: JourneyPolicy, draft: JourneyPolicy, reservation: Reservation, now: datetime,
    facts: JourneyFacts | None = None,
) -> list[ScheduleRow]:
    """The steps of `reservation` under both policies, in the order of the draft's plan
    (then the steps only the policy in force has)."""
    before = {line.step.key: line for line in plan_preview(current, reservation, now, facts).steps}
    after = {line.step.key: line for line in plan_preview(draft, reservation, now, facts).steps}
    keys = [*after, *(key for key in before if key not in after)]
    return [ScheduleRow(key, before.get(key), after.get(key), change_of(before.get(key), after.get(key)))
            for key in keys]


def change_of(current: PreviewStep | None, draft: PreviewStep | None) -> Change:
    sends_now, sends_then = current is not None and current.sends, draft is not None and draft.sends
    if sends_then and not sends_now:
        return Change.gains
    if sends_now and not sends_then:
        return Change.loses
    if sends_now and current is not None and draft is not None and (
            current.step.scheduled_for != draft.step.scheduled_for):
        return Change.moves
    return Change.same


def live_effect(
    current: JourneyPolicy, draft: JourneyPolicy, journeys: Sequence[RunningJourney], now: datetime,
) -> LiveEffect:
    """Per step key, the running journeys that would gain, lose or move it under `draft`."""
    effect = LiveEffect()
    by_key: dict[str, StepEffect] = {}
    for journey in journeys:
        reservation, facts = journey_facts(journey)
        effect.journeys += 1
        changed = False
        for row in compare_schedules(current, draft, reservation, now, facts):
            if row.change is Change.same:
                continue
            changed = True
            step = by_key.setdefault(row.key, StepEffect(row.key))
            setattr(step, row.change.value, getattr(step, row.change.value) + 1)
            if len(step.examples) < EXAMPLES_PER_STEP:
                step.examples.append(Example(reservation.reservation_id, reservation.hotel_id, row.change,
                                             _shown(row.current), _shown(row.draft)))
        effect.changed += changed
    effect.steps = sorted(by_key.values(), key=lambda step: step.key)
    return effect


def journey_facts(running: RunningJourney) -> tuple[Reservation, JourneyFacts]:
    """The reservation and the facts the planner needs, as a journey's rows hold them."""
    row = running.journey
    steps = [_step(record.key, record.kind, record.status, record.scheduled_for) for record in running.steps]
    consent = any(step.kind in _OFFER_KINDS and step.status not in (StepStatus.skipped, StepStatus.cancelled)
                  for step in steps) or any(offer.status != UpsellStatus.skipped.value for offer in running.offers
                                            if offer.status != UpsellStatus.planned.value)
    guest = Guest.model_construct(name=row.reservation_id, email=row.guest_email, phone=row.guest_phone,
                                  preferred_channels=[], marketing_consent=consent)
    reservation = Reservation.model_construct(reservation_id=row.reservation_id, hotel_id=row.hotel_id,
                                              guest=guest, arrival=row.arrival, departure=row.departure)
    facts = JourneyFacts(
        stage=Stage(row.stage),
        checkin_completed=row.checkin_status == CheckinStatus.completed.value,
        answered_offers=[offer.offer for offer in running.offers
                         if offer.status in (UpsellStatus.accepted.value, UpsellStatus.declined.value)],
        feedback_received=row.feedback_received_at is not None,
        steps=steps,
    )
    return reservation, facts


def _step(key: str, kind: str, status: str, scheduled_for: datetime | None) -> Step:
    step_kind, step_status = StepKind(kind), StepStatus(status)
    offer = key.split(":", 1)[1] if step_kind in _OFFER_KINDS and ":" in key else None
    # A sent step's moment is when it went: the base of its follow-up.
    done_at = scheduled_for if step_status in _SENT else None
    return Step(key=key, kind=step_kind, status=step_status, scheduled_for=scheduled_for, done_at=done_at,
                offer=offer)


def _shown(line: PreviewStep | None) -> str:
    if line is None:
        return "—"
    return f"{line.moment} · {line.status}"
