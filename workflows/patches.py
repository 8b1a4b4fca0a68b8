"""The journey's `workflow.patched` ids, in one place.

Each id guards a change to `GuestJourneyWorkflow` that issues different
commands than the code before it; a history recorded before the change replays
the old way. An id is never renamed or reused: recorded histories name it.
"""

from __future__ import annotations

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
