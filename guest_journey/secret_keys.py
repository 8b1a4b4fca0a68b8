"""The secret keys: how strong a key is, which of the configured keys production
refuses as weak, the development key kept in the data dir, and earlier keys still
accepted (`GUEST_JOURNEY_SECRET_KEY_FALLBACKS`)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

MIN_SECRET_BITS = 128
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def secret_bits(key: str) -> int:
    """The strength we credit a key with: 4 bits a character when it is all hex digits,
    6 bits a character otherwise (url-safe base64 and anything else). 128 bits are
    32 hex digits or 22 other characters. This measures keys made at random
    (`secrets.token_urlsafe(32)`, `openssl rand -hex 32`); a chosen phrase is
    weaker than its length says, whatever this counts."""
    per_character = 4 if key and set(key) <= _HEX_DIGITS else 6
    return len(key) * per_character


def weak_secrets(*, api_keys: Iterable[str], secret_key: str | None) -> list[str]:
    """The variables (and API key entries) whose keys are shorter than `MIN_SECRET_BITS`;
    no key is shown."""
    weak = []
    for number, key in enumerate(api_keys, start=1):
        if secret_bits(key) < MIN_SECRET_BITS:
            weak.append(f"GUEST_JOURNEY_API_KEYS (entry {number})")
    if secret_key is not None and secret_bits(secret_key) < MIN_SECRET_BITS:
        weak.append("GUEST_JOURNEY_SECRET_KEY")
    return weak


def development_secret_key(data_dir: Path) -> str:
    """The key kept in `data_dir/secret_key`, made at random (readable by its owner only)
    the first time it is asked for."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(key)
    return key


def fallback_keys(value: str) -> tuple[str, ...]:
    """Comma-separated earlier keys, in the order given; blank entries are skipped."""
    return tuple(entry.strip() for entry in value.split(",") if entry.strip())
