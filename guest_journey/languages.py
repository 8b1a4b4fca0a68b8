"""The guests' languages: one set of rules for the guest pages, the messages and
the staff pages.

- the languages we speak, in their normal form (`SUPPORTED_LANGUAGES`: pt-BR,
  en, es), and the one we fall back to (`DEFAULT_LANGUAGE`);
- how a language tag is written (`normalise_language`: `pt_br` -> `pt-BR`);
- which of some languages answers a requested tag (`best_language`): the tag
  itself, then its base language, then another language of the same base
  (pt-PT -> pt-BR, es-MX -> es); the first of several candidates that one
  answers, else the fallback (`choose_language`); the language a browser's
  `Accept-Language` header prefers (`from_accept_language`);
- the offers' names in each language (`OFFER_NAMES`, `offer_name`).

A page's words stay with the pages (`api.i18n`), a message's with its template
(`communications/templates`); what they share is here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Final

SUPPORTED_LANGUAGES: Final[tuple[str, ...]] = ("pt-BR", "en", "es")
DEFAULT_LANGUAGE: Final = "en"
# An `Accept-Language` header is read up to this many tags.
ACCEPT_LANGUAGE_MAX_TAGS: Final = 20

_SEPARATOR = re.compile(r"[-_]")

# Every offer a hotel's policy may name, in every supported language. Offers not
# listed are shown by their code (`spa_day_pass` -> "Spa day pass" to guests).
OFFER_NAMES: Final[Mapping[str, Mapping[str, str]]] = {
    "room_upgrade": {
        "pt-BR": "Upgrade de quarto",
        "en": "Room upgrade",
        "es": "Mejora de habitación",
    },
    "late_checkout": {"pt-BR": "Late check-out", "en": "Late check-out", "es": "Salida tardía"},
    "early_checkin": {
        "pt-BR": "Check-in antecipado",
        "en": "Early check-in",
        "es": "Entrada anticipada",
    },
    "breakfast": {"pt-BR": "Café da manhã", "en": "Breakfast", "es": "Desayuno"},
    "airport_transfer": {
        "pt-BR": "Transfer do aeroporto",
        "en": "Airport transfer",
        "es": "Traslado desde el aeropuerto",
    },
    "parking": {"pt-BR": "Estacionamento", "en": "Parking", "es": "Aparcamiento"},
    "spa": {"pt-BR": "Spa", "en": "Spa", "es": "Spa"},
}


def normalise_language(tag: str) -> str:
    """`pt_br` -> `pt-BR`, `zh-hant-tw` -> `zh-Hant-TW`, `pt--BR` -> `pt-BR`.

    The first subtag must be letters (`-pt`, `419` and `` are not language tags:
    `ValueError`); empty subtags after it are dropped.
    """
    first, *rest = _SEPARATOR.split(str(tag).strip())
    if not first.isalpha():
        raise ValueError(f"{tag!r} is not a language tag")
    normalised = [first.lower()]
    for part in rest:
        if not part:
            continue
        if len(part) == 4 and part.isalpha():
            normalised.append(part.title())
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            normalised.append(part.upper())
        else:
            normalised.append(part.lower())
    return "-".join(normalised)


def best_language(
    tag: str | None, available: Collection[str] = SUPPORTED_LANGUAGES
) -> str | None:
    """Which of `available` (normalised tags) answers `tag`: the tag itself (pt-BR),
    then its base language (es for es-MX), then the first, in sorted order, of the
    same base (pt-BR for pt or pt-PT); None if none does or `tag` is not a tag."""
    if not tag:
        return None
    try:
        normal = normalise_language(tag)
    except ValueError:
        return None
    if normal in available:
        return normal
    base = normal.split("-")[0]
    if base in available:
        return base
    same_base = sorted(language for language in available if language.split("-")[0] == base)
    return same_base[0] if same_base else None


def supported_language(tag: str | None) -> str | None:
    """The supported language that answers `tag`, or None: pt-PT -> pt-BR, es-MX -> es."""
    return best_language(tag, SUPPORTED_LANGUAGES)


def choose_language(
    *candidates: str | None,
    available: Collection[str] = SUPPORTED_LANGUAGES,
    fallback: str = DEFAULT_LANGUAGE,
) -> str:
    """The language that answers the first candidate one answers, else `fallback`."""
    for candidate in candidates:
        language = best_language(candidate, available)
        if language is not None:
            return language
    return fallback


def accept_language_tags(header: str | None) -> list[str]:
    """The tags of an `Accept-Language` header, most wanted first (by `q`, then by
    position); a `q` that is not a number counts as 0."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:ACCEPT_LANGUAGE_MAX_TAGS]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def from_accept_language(
    header: str | None, available: Collection[str] = SUPPORTED_LANGUAGES
) -> str | None:
    """The language of `available` that answers the most wanted tag of an
    `Accept-Language` header that one answers; None if none does."""
    for tag in accept_language_tags(header):
        language = best_language(tag, available)
        if language is not None:
            return language
    return None


def humanised_code(code: str) -> str:
    """`spa_day_pass` -> "Spa day pass": how guests see a code we have no name for."""
    words = code.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def offer_names(language: str) -> dict[str, str]:
    """Every offer's name in the supported language that answers `language`."""
    chosen = choose_language(language)
    return {offer: names[chosen] for offer, names in OFFER_NAMES.items()}


def offer_name(offer: str, language: str) -> str:
    """`room_upgrade` -> "Upgrade de quarto" in pt-BR, "Room upgrade" in en (or any
    language without a name of its own); an offer not in the table: its code humanised."""
    names = OFFER_NAMES.get(offer)
    if names is None:
        return humanised_code(offer)
    return names[choose_language(language)]
