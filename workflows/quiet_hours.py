"""Where quiet hours put a message: a pure function of its moment, its kind and the policy.

Quiet hours are hotel local time (`hotel_timezone`, computed with the IANA zone,
so their end is the same local hour on the night the clocks change). The policy
says per kind of message what they do (`quiet_hours.messages`): `wait` holds it
until they end, `send` lets it go at its moment, `arrival_margin` (check-in
messages) holds it until they end but never later than `arrival_margin` before
arrival, so a late booking still gets its check-in link.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from guest_journey.journeys import StepKind
from guest_journey.policy import HotelPolicy, QuietHoursRule, iso_duration


def out_of_quiet_hours(
    due: datetime, kind: StepKind, policy: HotelPolicy, *, arrival: datetime, by_kind: bool = True
) -> tuple[datetime, str | None]:
    """The moment a message of `kind` due at `due` goes, and why when quiet hours move it
    (or let it go inside them). With `by_kind` False every message waits for their end:
    the rule before quiet hours fitted each kind, which journeys planned under it replay."""
    quiet = policy.quiet_hours
    if quiet is None:
        return due, None
    rule = quiet.rule(kind.value) if by_kind else QuietHoursRule.wait
    if rule is QuietHoursRule.send:
        return due, None
    zone = policy.timezone
    local = due.astimezone(zone)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return due, None
    end_day = local.date()
    if quiet.start > quiet.end and local.time().replace(tzinfo=None) >= quiet.start:
        end_day += timedelta(days=1)
    moved = datetime.combine(end_day, quiet.end, tzinfo=zone).astimezone(UTC)
    hours = f"quiet hours {quiet.describe()} ({policy.hotel_timezone})"
    latest = arrival - quiet.arrival_margin
    if rule is QuietHoursRule.arrival_margin and moved > latest:
        # Waiting for their end would leave the guest less than the margin before
        # arrival: the check-in message goes as late as the margin allows.
        at = max(due, latest)
        margin = iso_duration(quiet.arrival_margin)
        held = f"their end at {moved.astimezone(zone):%Y-%m-%d %H:%M} is less than {margin} before arrival"
        if at == due:
            return due, f"goes in {hours}: {held}"
        return at, (
            f"{hours} held it from {local:%Y-%m-%d %H:%M} to {at.astimezone(zone):%Y-%m-%d %H:%M}, "
            f"{margin} before arrival: {held}"
        )
    return moved, f"{hours} moved it from {local:%Y-%m-%d %H:%M} to {moved.astimezone(zone):%Y-%m-%d %H:%M}"
