"""The one rule for what staff may give a message they send (`staff_context`)."""

from __future__ import annotations

import pytest

from communications.staff_message import (
    Problem,
    StaffMessageError,
    check_in_reply_to,
    staff_context,
)
from communications.templates import TemplateCatalogue
from guest_journey.reservations import Channel

CATALOGUE = TemplateCatalogue.load()


def checked(template: str, context: dict[str, object], channel: Channel | None = None) -> dict[str, object]:
    return staff_context(catalogue=CATALOGUE, template=template, channel=channel, context=context)


def refusal(template: str, context: dict[str, object], channel: Channel | None = None) -> StaffMessageError:
    with pytest.raises(StaffMessageError) as refused:
        checked(template, context, channel)
    return refused.value


def test_only_what_the_template_uses_is_passed_on():
    assert checked("free_text", {"body": "Olá", "journey_stage": "pre_arrival", "upsell_offer": ""}) == {
        "body": "Olá"}
    assert checked("upsell_offer", {"upsell_offer": " late_checkout ", "body": "not used"}) == {
        "upsell_offer": "late_checkout"}
    assert checked("checkin_reminder", {"journey_stage": "in_stay"}, Channel.whatsapp) == {}


def test_every_value_the_journey_fills_is_refused_by_name():
    template_variables = {variable for info in CATALOGUE.describe() for variable in info.variables}
    assert {"arrival", "departure", "guest_name", "hotel_name", "checkin_url", "offer_price"} <= template_variables
    for key in sorted(template_variables - {"body", "upsell_offer"}) + ["step_key", "hotel_id", "language"]:
        error = refusal("free_text", {"body": "Olá", key: "x"})
        assert (error.field, error.problem) == (f"context.{key}", Problem.journey_key)


@pytest.mark.parametrize(
    ("template", "context", "channel", "field", "problem"),
    [
        ("no_such", {}, None, "template", Problem.unknown_template),
        ("free_text", {"body": "Olá", "colour": "blue"}, None, "context.colour", Problem.unknown_key),
        ("free_text", {"body": "   "}, None, "context.body", Problem.missing_value),
        ("free_text", {"body": "x" * 4001}, None, "context.body", Problem.invalid_value),
        ("free_text", {"body": ["Olá"]}, None, "context.body", Problem.invalid_value),
        ("upsell_follow_up", {}, None, "context.upsell_offer", Problem.missing_value),
        ("upsell_offer", {"upsell_offer": "Room Upgrade"}, None, "context.upsell_offer", Problem.invalid_value),
        ("checkin_reminder", {"journey_stage": "later"}, None, "context.journey_stage", Problem.invalid_value),
    ],
)
def test_what_is_wrong_is_named(template, context, channel, field, problem):
    error = refusal(template, context, channel)
    assert (error.field, error.problem) == (field, problem)
    assert str(error).startswith(f"{field}: ")


def test_in_reply_to_is_one_of_our_message_ids():
    ours = "0b6f7a5e-3c1d-4f0a-9a57-5d2e8c41b7a3"
    assert check_in_reply_to(ours) == ours
    assert check_in_reply_to("") is None and check_in_reply_to(None) is None
    for other in ("abc", ours.upper(), f"<{ours}@hotel.example>", f"{ours}\n", "wamid.HBgM"):
        with pytest.raises(StaffMessageError):
            check_in_reply_to(other)
