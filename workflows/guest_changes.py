"""Another guest on the reservation: telling a new guest from a correction, and
clearing what the earlier guest gave on the guest pages."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from guest_journey.journeys import Checkin, CheckinStatus, GuestChange
    from guest_journey.reservations import Guest
    from workflows.journey_inputs import JourneyState

KEPT_GUEST_CHANGES = 10
# The check-in form's preference keys (api/guest/checkin_form.py `submission`): cleared for
# another guest when a journey checked in before it noted which keys its form gave.
CHECKIN_FORM_PREFERENCES = ("bed", "pillow", "dietary", "accessibility", "arrival_notes")


def another_guest(before: Guest, after: Guest) -> bool:
    """Another person, not a correction: the name changes and so does the e-mail or the phone.
    (A new spelling of the name, or a new address for the same name, is the same guest.)"""
    def name(guest: Guest) -> str:
        return " ".join(guest.name.casefold().split())

    def email(guest: Guest) -> str | None:
        return guest.email.casefold() if guest.email else None

    contact_changed = email(before) != email(after) or before.phone != after.phone
    return name(before) != name(after) and contact_changed


def forget_the_earlier_guest(s: JourneyState) -> None:
    """Another guest took the reservation: what the earlier one gave on the guest pages
    (check-in details, form preferences, the feedback comment) is not theirs to see.
    Steps already sent stay done; nothing is sent again."""
    cleared: list[str] = []
    form_keys = set(s.form_preferences)
    if not form_keys and s.checkin.status is CheckinStatus.completed:
        form_keys = set(CHECKIN_FORM_PREFERENCES)
    if s.checkin != Checkin():
        s.checkin, cleared = Checkin(), [*cleared, "checkin"]
    if form_keys & s.preferences.keys():
        s.preferences = {key: value for key, value in s.preferences.items() if key not in form_keys}
        cleared.append("preferences")
    s.form_preferences = []
    if s.feedback.comment is not None:
        s.feedback, cleared = s.feedback.model_copy(update={"comment": None}), [*cleared, "feedback_comment"]
    change = GuestChange(
        at=workflow.now(),
        reason="the reservation was given to another guest (name and e-mail or phone changed)",
        cleared=cleared,
    )
    s.guest_changes = [*s.guest_changes, change][-KEPT_GUEST_CHANGES:]
