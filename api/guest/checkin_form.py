"""The check-in form: its fields, their server-side validation, and what a
valid form sends to the journey (details, with the document number masked,
and preferences)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from api.guest.forms import GuestForm
from api.i18n import Translator

DOCUMENT_TYPES = ("passport", "national_id", "driving_licence")
BEDS = ("any", "double", "twin")
PILLOWS = ("any", "soft", "firm", "hypoallergenic")
DIETARY = ("vegetarian", "vegan", "gluten_free", "lactose_free", "halal", "kosher")
ACCESSIBILITY = ("step_free", "accessible_bathroom", "hearing", "visual")
LIMITS = {"address_line": 200, "city": 100, "postal_code": 20, "notes": 1000, "signature": 200}
TEXT_FIELDS = ("eta", "document_type", "document_number", "nationality", "date_of_birth",
               "address_line", "city", "postal_code", "country", "bed", "pillow", "notes", "signature")
ADULT_AGE = 18
OLDEST_AGE = 120
_DOCUMENT_NUMBER = re.compile(r"^[A-Z0-9]{4,20}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def mask_document_number(number: str) -> str:
    """`AB1234567` -> `*****4567`: at most the last four, never more than half."""
    keep = min(4, len(number) // 2)
    return "*" * (len(number) - keep) + number[len(number) - keep:]


def masked_tail(masked: str) -> str:
    return masked.lstrip("*")


@dataclass
class CheckinForm:
    """What the guest typed (kept on error) and what is wrong with it."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors


def blank_values() -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(TEXT_FIELDS, "")
    values.update(bed="any", pillow="any", dietary=[], accessibility=[], marketing=False, terms=False)
    return values


def values_from_journey(details: dict[str, Any], preferences: dict[str, Any]) -> dict[str, Any]:
    """The form as the guest last sent it (the document number itself is not kept)."""
    values = blank_values()
    stored = details.get("address")
    address: dict[str, Any] = stored if isinstance(stored, dict) else {}
    values.update(
        eta=details.get("estimated_arrival") or "",
        document_type=details.get("document_type") or "",
        nationality=details.get("nationality") or "",
        date_of_birth=details.get("date_of_birth") or "",
        address_line=address.get("line") or "",
        city=address.get("city") or "",
        postal_code=address.get("postal_code") or "",
        country=address.get("country") or "",
        bed=preferences.get("bed") or "any",
        pillow=preferences.get("pillow") or "any",
        dietary=list(preferences.get("dietary") or []),
        accessibility=list(preferences.get("accessibility") or []),
        notes=preferences.get("arrival_notes") or "",
        marketing=bool(details.get("marketing_consent")),
        terms=False,
        signature="",
    )
    return {key: str(value) if key in TEXT_FIELDS else value for key, value in values.items()}


def parse_checkin(form: GuestForm, tr: Translator, *, today: date, document_on_file: str | None) -> CheckinForm:
    values = blank_values()
    for name in TEXT_FIELDS:
        values[name] = form.get(name)
    values["document_number"] = re.sub(r"[\s.\-/]", "", values["document_number"]).upper()
    values["nationality"] = values["nationality"].upper()
    values["country"] = values["country"].upper()
    values["dietary"] = form.getlist("dietary")
    values["accessibility"] = form.getlist("accessibility")
    values["marketing"] = form.get("marketing") == "yes"
    values["terms"] = form.get("terms") == "yes"
    errors: dict[str, str] = {}
    countries = {code for code, _ in tr.countries()}

    def need(name: str) -> bool:
        if not values[name]:
            errors[name] = tr.t("form.required")
            return False
        return True

    if need("eta") and not _TIME.match(values["eta"]):
        errors["eta"] = tr.t("form.time")
    if need("document_type") and values["document_type"] not in DOCUMENT_TYPES:
        errors["document_type"] = tr.t("form.choice")
    if values["document_number"]:
        if not _DOCUMENT_NUMBER.match(values["document_number"]):
            errors["document_number"] = tr.t("checkin.document_number.invalid")
    elif not document_on_file:
        errors["document_number"] = tr.t("form.required")
    for name in ("nationality", "country"):
        if need(name) and values[name] not in countries:
            errors[name] = tr.t("form.choice")
    if need("date_of_birth"):
        problem = _birth_date_problem(values["date_of_birth"], today)
        if problem:
            errors["date_of_birth"] = tr.t(problem)
    for name in ("address_line", "city", "signature"):
        need(name)
    for name, limit in LIMITS.items():
        if len(values[name]) > limit:
            errors[name] = tr.t("form.too_long", max=limit)
    if "signature" not in errors and sum(c.isalpha() for c in values["signature"]) < 2:
        errors["signature"] = tr.t("checkin.signature.invalid")
    if values["bed"] not in BEDS:
        errors["bed"] = tr.t("form.choice")
    if values["pillow"] not in PILLOWS:
        errors["pillow"] = tr.t("form.choice")
    if any(item not in DIETARY for item in values["dietary"]):
        errors["dietary"] = tr.t("form.choice")
    if any(item not in ACCESSIBILITY for item in values["accessibility"]):
        errors["accessibility"] = tr.t("form.choice")
    if not values["terms"]:
        errors["terms"] = tr.t("checkin.terms.required")
    return CheckinForm(values=values, errors=errors)


def _birth_date_problem(text: str, today: date) -> str | None:
    if not _DATE.match(text):
        return "form.date"
    try:
        born = date.fromisoformat(text)
    except ValueError:
        return "form.date"
    if born >= today:
        return "checkin.date_of_birth.future"
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if age > OLDEST_AGE:
        return "checkin.date_of_birth.too_old"
    if age < ADULT_AGE:
        return "checkin.date_of_birth.minor"
    return None


def submission(
    form: CheckinForm, tr: Translator, *, arrival: datetime, now: datetime, document_on_file: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(details, preferences) for the journey; the document number only masked."""
    v = form.values
    eta = time.fromisoformat(v["eta"])
    local_arrival = tr.local(arrival)
    expected = datetime.combine(local_arrival.date(), eta, tzinfo=local_arrival.tzinfo)
    masked = mask_document_number(v["document_number"]) if v["document_number"] else document_on_file
    details = {
        "estimated_arrival": v["eta"],
        "estimated_arrival_at": expected.isoformat(),
        "document_type": v["document_type"],
        "document_number": masked,
        "nationality": v["nationality"],
        "date_of_birth": v["date_of_birth"],
        "address": {"line": v["address_line"], "city": v["city"],
                    "postal_code": v["postal_code"] or None, "country": v["country"]},
        "marketing_consent": v["marketing"],
        "terms_accepted_at": now.isoformat(),
        "signature_name": v["signature"],
        "language": tr.language,
    }
    preferences = {
        "bed": None if v["bed"] == "any" else v["bed"],
        "pillow": None if v["pillow"] == "any" else v["pillow"],
        "dietary": sorted(set(v["dietary"])),
        "accessibility": sorted(set(v["accessibility"])),
        "arrival_notes": v["notes"] or None,
    }
    return details, preferences
