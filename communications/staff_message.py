"""What staff may ask of a message they send through the journey: one rule for
`POST /communications/send` and the staff panel's send and chat forms.

Staff choose a template (and maybe a channel), may name the guest's message
they answer (`in_reply_to`: one of our message ids, a uuid), and give only what
the journey cannot know itself (`STAFF_KEYS`):

- `body`: the text of a `free_text` message;
- `upsell_offer`: the offer an offer template presents;
- `journey_stage`: accepted, as the runbook names it, but not passed on: the
  journey uses its own stage.

A staff key the chosen template does not use is accepted and not passed on.
Everything else a template uses (the guest's name, the hotel, the stay's dates,
links, prices) the journey fills from the reservation and its policy: a context
naming it is refused, as is any other key, so staff input can neither change
what a guest is told about the stay nor give the journey a value its template
cannot render.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from communications.templates import TemplateCatalogue
from guest_journey.journeys import Stage
from guest_journey.reservations import Channel

BODY_LIMIT = 4000
OFFER = r"^[a-z][a-z0-9_]{0,63}$"
# Our message ids (inbound and outbound alike) are uuids, as `str(uuid)` writes them.
MESSAGE_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
STAFF_KEYS = ("body", "journey_stage", "upsell_offer")
# Filled by the journey (workflow and activity) besides the templates' own variables.
JOURNEY_KEYS = frozenset({"step_key", "hotel_id", "language"})
_OFFER = re.compile(OFFER)
_MESSAGE_ID = re.compile(MESSAGE_ID)
_STAGES = frozenset(stage.value for stage in Stage)


class Problem(StrEnum):
    unknown_template = "unknown_template"
    no_channel_version = "no_channel_version"
    unknown_key = "unknown_key"
    journey_key = "journey_key"
    invalid_value = "invalid_value"
    missing_value = "missing_value"
    window_closed = "window_closed"


class StaffMessageError(ValueError):
    """What is wrong: `field` is `template`, `channel`, `in_reply_to` or `context.<key>`."""

    def __init__(self, field: str, problem: Problem, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.problem = problem
        self.detail = detail

    @property
    def key(self) -> str:
        """The context key named, or the field."""
        return self.field.removeprefix("context.")


def check_in_reply_to(value: str | None) -> str | None:
    """Our id of the guest's message answered, or None."""
    if value is None or value == "":
        return None
    if not _MESSAGE_ID.fullmatch(value):
        raise StaffMessageError("in_reply_to", Problem.invalid_value, "must be one of our message ids (a uuid)")
    return value


def staff_context(
    *, catalogue: TemplateCatalogue, template: str, channel: Channel | None, context: Mapping[str, Any]
) -> dict[str, Any]:
    """The context to send `template` with, from what staff gave; `StaffMessageError`
    names the first thing wrong. Absent, null and empty values count as not given."""
    variables = catalogue.variables(template)
    if not catalogue.has(template):
        known = ", ".join(sorted(info.name for info in catalogue.describe()))
        raise StaffMessageError("template", Problem.unknown_template, f"unknown template {template!r}; known: {known}")
    if channel is not None and channel.value not in _channels(catalogue, template):
        raise StaffMessageError("channel", Problem.no_channel_version,
                                f"template {template!r} has no {channel.value} version")
    journey_keys = _template_variables(catalogue) | JOURNEY_KEYS
    for key in context:
        if key in STAFF_KEYS:
            continue
        if key in journey_keys:
            raise StaffMessageError(f"context.{key}", Problem.journey_key,
                                    f"{key!r} is filled by the journey from the reservation and its policy; "
                                    "it cannot be given")
        raise StaffMessageError(f"context.{key}", Problem.unknown_key,
                                f"unknown context key {key!r}; staff may give {', '.join(STAFF_KEYS)}")
    given = {key: _checked(key, value) for key, value in context.items() if not _absent(value)}
    for key in STAFF_KEYS:
        if variables.get(key) == "required" and key not in given:
            raise StaffMessageError(f"context.{key}", Problem.missing_value, f"template {template!r} needs it")
    return {key: value for key, value in given.items() if key in variables}


def _channels(catalogue: TemplateCatalogue, template: str) -> list[str]:
    return next(info.channels for info in catalogue.describe() if info.name == template)


def _template_variables(catalogue: TemplateCatalogue) -> set[str]:
    return {variable for info in catalogue.describe() for variable in info.variables}


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _checked(key: str, value: Any) -> str:
    field = f"context.{key}"
    if not isinstance(value, str):
        raise StaffMessageError(field, Problem.invalid_value, "must be text")
    if key == "body":
        if len(value) > BODY_LIMIT:
            raise StaffMessageError(field, Problem.invalid_value,
                                    f"at most {BODY_LIMIT} characters ({len(value)} given)")
        return value
    value = value.strip()
    if key == "upsell_offer" and not _OFFER.fullmatch(value):
        raise StaffMessageError(field, Problem.invalid_value,
                                "an offer code: lower-case letters, digits and _ (at most 64)")
    if key == "journey_stage" and value not in _STAGES:
        raise StaffMessageError(field, Problem.invalid_value, f"one of {', '.join(sorted(_STAGES))}")
    return value
