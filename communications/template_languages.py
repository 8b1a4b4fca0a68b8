"""Language tags of the message templates: how a tag is written, and which of a
template's languages answers a requested one."""

from __future__ import annotations

import re
from collections.abc import Collection


def normalise_language(tag: str) -> str:
    """`pt_br` -> `pt-BR`, `zh-hant-tw` -> `zh-Hant-TW`."""
    parts = [part for part in re.split(r"[-_]", str(tag).strip()) if part]
    if not parts or not parts[0].isalpha():
        raise ValueError(f"{tag!r} is not a language tag")
    normalised = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            normalised.append(part.title())
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            normalised.append(part.upper())
        else:
            normalised.append(part.lower())
    return "-".join(normalised)


def choose_language(available: Collection[str], requested: str, fallback: str) -> str:
    """Exact tag (pt-BR), then the base language (pt, or any pt-*), then the fallback (en)."""
    try:
        tag = normalise_language(requested)
    except ValueError:
        return fallback
    if tag in available:
        return tag
    base = tag.split("-")[0]
    if base in available:
        return base
    same_base = sorted(candidate for candidate in available if candidate.split("-")[0] == base)
    return same_base[0] if same_base else fallback
