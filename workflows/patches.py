"""The journey's `workflow.patched` ids, in one place.

Each id guards a change to `GuestJourneyWorkflow` that issues different
commands than the code before it; a history recorded before the change replays
the old way. An id is never renamed or reused: recorded histories name it. New runs start on `CURRENT_SHAPE` (below).
"""

from __future__ import annotations

from temporalio import workflow

# Wake at once when a handler changed the journey while the read model was being written.
RECORD_BEFORE_SLEEPING = "record-before-sleeping"
# The planner heeds the guest's "send me offers" answer on the check-in form.
CHECKIN_MARKETING_CONSENT = "checkin-marketing-consent"
# Only the last settled staff messages stay in the state.
BOUNDED_MANUAL_STEPS = "bounded-manual-steps"
# A long history continues as new before the next step is sent, not only when idle.
CONTINUE_WHILE_BUSY = "continue-while-busy"
# Another guest on the reservation does not see what the earlier one gave.
GUEST_REPLACED = "guest-replaced"
# Quiet hours fit each kind of message (policy `quiet_hours.messages`): check-in
# messages wait at most until `arrival_margin` before arrival.
QUIET_HOURS_BY_KIND = "quiet-hours-by-kind"

# A run's shape, chosen when the run starts (its input carries it, so its first
# event records it): a run on a later shape needs no marker for what it implies.
# 0: every id above is asked with `workflow.patched`.
# 1: search attributes given with the start, the read model written by a local
#    activity, every update answered once the read model holds its change, and
#    every id above applies (but `QUIET_HOURS_BY_KIND`, which came later) without its marker (each marker also costs an upsert
#    of `TemporalChangeVersion`, which the first workflow task should not make).
ANSWER_WHEN_RECORDED = 1
CURRENT_SHAPE = ANSWER_WHEN_RECORDED
IMPLIED_BY_ANSWER_WHEN_RECORDED = frozenset({
    RECORD_BEFORE_SLEEPING, CHECKIN_MARKETING_CONSENT, BOUNDED_MANUAL_STEPS, CONTINUE_WHILE_BUSY, GUEST_REPLACED,
})


def patched(patch_id: str, shape: int) -> bool:
    """`workflow.patched(patch_id)`, unless the run's shape implies it."""
    if shape >= ANSWER_WHEN_RECORDED and patch_id in IMPLIED_BY_ANSWER_WHEN_RECORDED:
        return True
    return workflow.patched(patch_id)
