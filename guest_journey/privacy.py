"""Guests' addresses kept out of logs and traces.

Log lines (`guest_journey.logs`) and exported spans (`guest_journey.telemetry`)
pass through `mask`: an e-mail address keeps its first letter and its domain
(`a***@example.com`), a phone number in E.164 form its country prefix and last
four digits (`+55*******4321`). Code still should not log addresses at all;
this catches what a library or an error message quotes (an SMTP server refusing
`<ana@example.com>`). Masking is idempotent: a masked value stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*"
    r"@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})"
)
# "+" and 8 to 15 digits, single spaces or dashes allowed between them.
PHONE = re.compile(r"\+\d(?:[ -]?\d){7,14}(?![\d])")
KEPT_PHONE_DIGITS = (2, 4)  # country prefix, line ending


def _mask_phone(found: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", found.group(0))
    head, tail = KEPT_PHONE_DIGITS
    return "+" + digits[:head] + "*" * (len(digits) - head - tail) + digits[-tail:]


def mask_text(text: str) -> str:
    """`text` with every e-mail address and phone number masked."""
    if "@" in text:
        text = EMAIL.sub(lambda found: f"{found.group(1)}***@{found.group(2)}", text)
    if "+" in text:
        text = PHONE.sub(_mask_phone, text)
    return text


def mask(value: Any) -> Any:
    """A string masked; in lists, tuples and mappings every string in them; anything else as it is."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {key: mask(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask(item) for item in value)
    return value
