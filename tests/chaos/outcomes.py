"""What became of every (reservation, step) of a chaos run, as the guest and staff see it.

A step is matched to what the stand-ins took through our message id (e-mail's
`X-Guest-Journey-Message-Id`, WhatsApp's `biz_opaque_callback_data`) on every
channel the step could have gone out on, so that a step sent once on WhatsApp
and once more on e-mail counts as received twice. Staff see the step's status
in the journey and the status of its message in the message table.

Outcomes that keep the promise "never twice, never lost":

- `received once`: the guest has it, the journey says sent;
- `in doubt, none received`: staff see the step and its message in doubt;
- `received, in doubt`: the provider took it but its answer was lost and no
  status report could say so; staff see it in doubt (not a duplicate). Only
  possible where the answer can be lost that way (SMTP dropped after DATA,
  WhatsApp without any status webhook);
- `not sent (reason)`: skipped or cancelled with its reason, nothing received;
- `failed (reason)`: failed with its reason, nothing received.

Outcomes that break it: `duplicate` (received twice or more), `lost` (the
journey says sent, or left it unsettled, and nothing was received) and
`shown wrongly` (the step and its message disagree, or something was
received of a step the journey says it did not send).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from guest_journey.journeys import JourneyView, Step, StepKind, StepStatus
from guest_journey.messages import (
    SENT_STATUSES,
    MessageStatus,
    message_id_for,
    message_key,
    template_resend_key,
)
from guest_journey.reservations import Channel
from tests.chaos.journeys import journey_problems


class Outcome(StrEnum):
    received_once = "received once"
    in_doubt_none_received = "in doubt, none received"
    in_doubt_received = "received, in doubt"
    not_sent = "not sent (reason)"
    failed = "failed (reason)"
    duplicate = "duplicate"
    lost = "lost"
    shown_wrongly = "shown wrongly"


BROKEN = frozenset({Outcome.duplicate, Outcome.lost, Outcome.shown_wrongly})
_SENT = frozenset(status.value for status in SENT_STATUSES)
_IN_DOUBT = MessageStatus.in_doubt.value


@dataclass(frozen=True)
class StepOutcome:
    reservation_id: str
    step_key: str
    outcome: Outcome
    detail: str


def step_message_ids(reservation_id: str, step_key: str) -> set[str]:
    """Every message id a step may be sent under: one per channel, and WhatsApp's template re-send."""
    ids = set()
    for channel in Channel:
        key = message_key(reservation_id, step_key, channel)
        ids.add(message_id_for(key))
        if channel is Channel.whatsapp:
            ids.add(message_id_for(template_resend_key(key)))
    return ids


def step_outcomes(
    results: Iterable[JourneyView], received: Iterable[str], message_statuses: Mapping[str, str]
) -> tuple[list[StepOutcome], list[str]]:
    """Each message step's outcome, and the received messages that belong to no step."""
    counts = Counter(received)
    outcomes = []
    claimed: set[str] = set()
    for journey in results:
        for step in journey.steps:
            if step.kind is StepKind.close:
                continue
            ids = step_message_ids(journey.reservation_id, step.key)
            claimed |= ids
            times = sum(counts[message_id] for message_id in ids)
            outcome, detail = _outcome(step, times, message_statuses)
            outcomes.append(StepOutcome(journey.reservation_id, step.key, outcome, detail))
    strays = [f"{message_id} received {n} times" for message_id, n in sorted(counts.items()) if message_id not in claimed]
    return outcomes, strays


def _outcome(step: Step, times: int, message_statuses: Mapping[str, str]) -> tuple[Outcome, str]:
    row = message_statuses.get(step.message_id, "no message") if step.message_id else "no message"
    said = f"step {step.status.value}, message {row}, received {times}; {step.reason or 'no reason'}"
    if times > 1:
        return Outcome.duplicate, said
    if step.status is StepStatus.done:
        if times == 0:
            return Outcome.lost, said
        return (Outcome.received_once if row in _SENT else Outcome.shown_wrongly), said
    if step.status is StepStatus.in_doubt:
        if row != _IN_DOUBT:
            return Outcome.shown_wrongly, said
        return (Outcome.in_doubt_received if times else Outcome.in_doubt_none_received), said
    if step.status in (StepStatus.skipped, StepStatus.cancelled, StepStatus.failed):
        if times:
            return Outcome.shown_wrongly, said
        if not step.reason:
            return Outcome.lost, said
        return (Outcome.failed if step.status is StepStatus.failed else Outcome.not_sent), said
    return Outcome.lost, said  # planned or due: never settled


def count(outcomes: Iterable[StepOutcome]) -> Counter[Outcome]:
    return Counter(outcome.outcome for outcome in outcomes)


def broken(outcomes: Iterable[StepOutcome], *, allowed: frozenset[Outcome] | None = None) -> list[str]:
    """The steps whose outcome breaks the promise, or is not among `allowed`."""
    return [
        f"{o.reservation_id} {o.step_key}: {o.outcome.value} ({o.detail})"
        for o in outcomes
        if o.outcome in BROKEN or (allowed is not None and o.outcome not in allowed)
    ]


def outcome_table(rows: Mapping[str, Counter[Outcome]]) -> str:
    """A Markdown table: one row per scenario, one column per outcome."""
    columns = list(Outcome)
    lines = [
        "| scenario | steps | " + " | ".join(column.value for column in columns) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for scenario, counts in rows.items():
        cells = " | ".join(str(counts[column]) for column in columns)
        lines.append(f"| {scenario} | {sum(counts.values())} | {cells} |")
    return "\n".join(lines)


# Every row a test reported in this session, printed together at its end (conftest.py).
REPORTED: dict[str, Counter[Outcome]] = {}


def report(rows: Mapping[str, Counter[Outcome]]) -> str:
    """Keep the rows for the session's summary; answer their table, for the test's log."""
    REPORTED.update(rows)
    return outcome_table(rows)


def assert_received_once_or_not_sent(
    scenario: str, results: Sequence[JourneyView], received: Iterable[str], message_statuses: Mapping[str, str]
) -> None:
    """Every journey ran from booking to close, and each message step was received
    exactly once or not sent with its reason: none in doubt. The outcomes are
    reported as `scenario`'s row."""
    problems = journey_problems(results)
    assert not problems, "\n".join(problems)
    outcomes, strays = step_outcomes(results, received, message_statuses)
    assert not strays, f"received, but of no step: {strays}"
    print(report({scenario: count(outcomes)}))
    wrong = broken(outcomes, allowed=frozenset({Outcome.received_once, Outcome.not_sent}))
    assert not wrong, "\n".join(wrong)
