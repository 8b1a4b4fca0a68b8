"""The journey policy (CONTRACT §3): when each step of a journey is due.

A YAML or JSON file, validated on load; per-hotel overrides under `hotels`.
Durations are ISO 8601 (`PT72H`, `P2D`).
"""

from __future__ import annotations

import json
from datetime import time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the bad field."""


def _duration_text(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        raise ValueError(
            f"{value!r} is not an ISO 8601 duration; write it like 'PT72H', 'PT30M' or 'P2D'"
        )
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


def _clock_text(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        raise ValueError(
            'give the time as "HH:MM" text; in YAML quote it ("22:00"), '
            "unquoted 22:00 is read as a number"
        )
    return value


def _local_clock(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("quiet hours are hotel local time; give the time without a UTC offset")
    return value


def iso_duration(value: timedelta) -> str:
    """A short, stable ISO 8601 text for a duration: PT24H, PT3H, P2D, PT90M."""
    seconds = int(value.total_seconds())
    if seconds and seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"P{seconds // 86400}D"
    if seconds % 3600 == 0:
        return f"PT{seconds // 3600}H"
    if seconds % 60 == 0:
        return f"PT{seconds // 60}M"
    return f"PT{seconds}S"


Duration = Annotated[timedelta, BeforeValidator(_duration_text), AfterValidator(_not_negative)]
ClockTime = Annotated[time, BeforeValidator(_clock_text), AfterValidator(_local_clock)]


class QuietHoursRule(StrEnum):
    """Whether quiet hours hold back one kind of message."""

    wait = "wait"  # held until quiet hours end; skipped if that is past its cutoff
    # held until they end, but never later than `arrival_margin` before arrival:
    # closer to arrival it goes in quiet hours rather than too late to help
    arrival_margin = "arrival_margin"
    send = "send"  # quiet hours do not apply: it goes at its moment


CHECKIN_KINDS = ("checkin_invitation", "checkin_reminder")


class QuietHoursMessages(BaseModel):
    """Per message kind (the step kinds that send), what quiet hours do to it."""

    model_config = ConfigDict(extra="forbid")

    checkin_invitation: QuietHoursRule = QuietHoursRule.arrival_margin
    checkin_reminder: QuietHoursRule = QuietHoursRule.arrival_margin
    upsell: QuietHoursRule = QuietHoursRule.wait
    upsell_follow_up: QuietHoursRule = QuietHoursRule.wait
    guest_post_stay_feedback: QuietHoursRule = QuietHoursRule.wait
    feedback_reminder: QuietHoursRule = QuietHoursRule.wait

    @field_validator("upsell", "upsell_follow_up", "guest_post_stay_feedback", "feedback_reminder")
    @classmethod
    def _margin_before_arrival_only(cls, rule: QuietHoursRule) -> QuietHoursRule:
        if rule is QuietHoursRule.arrival_margin:
            raise ValueError(
                f"arrival_margin is for the check-in messages ({', '.join(CHECKIN_KINDS)}), "
                "which go before arrival; use wait or send"
            )
        return rule


class QuietHours(BaseModel):
    """Hotel local hours in which messages wait (`messages` says which, per kind).

    ```yaml
    quiet_hours:
      start: "22:00"
      end: "08:00"
      arrival_margin: PT2H          # check-in messages wait at most until this long before arrival
      messages: {upsell: wait, checkin_invitation: arrival_margin, feedback_reminder: send}
    ```
    """

    model_config = ConfigDict(extra="forbid")

    start: ClockTime
    end: ClockTime
    arrival_margin: Duration = timedelta(hours=2)
    messages: QuietHoursMessages = Field(default_factory=QuietHoursMessages)

    def rule(self, kind: str) -> QuietHoursRule:
        """What quiet hours do to a message of `kind` (a kind they do not name waits)."""
        rule = getattr(self.messages, kind, QuietHoursRule.wait)
        return rule if isinstance(rule, QuietHoursRule) else QuietHoursRule.wait

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def describe(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def describe_rules(self) -> str:
        """Which messages wait, e.g. "checkin_invitation, checkin_reminder wait at most
        until PT2H before arrival; the others wait"."""
        groups: dict[QuietHoursRule, list[str]] = {}
        for kind, rule in self.messages:
            groups.setdefault(rule, []).append(kind)
        margin = iso_duration(self.arrival_margin)
        words = {
            QuietHoursRule.wait: "wait for their end",
            QuietHoursRule.arrival_margin: f"wait at most until {margin} before arrival",
            QuietHoursRule.send: "go at their moment",
        }
        return "; ".join(f"{', '.join(kinds)} {words[rule]}" for rule, kinds in groups.items())


class UpsellOffer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offer: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    send_before_arrival: Duration | None = None
    send_before_departure: Duration | None = None
    follow_up_after: Duration | None = None
    price: str | None = Field(default=None, description="shown to the guest, e.g. '120.00'")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")

    @model_validator(mode="after")
    def _exactly_one_moment(self) -> UpsellOffer:
        if (self.send_before_arrival is None) == (self.send_before_departure is None):
            raise ValueError(
                f"offer {self.offer!r} needs exactly one of send_before_arrival, send_before_departure"
            )
        return self

    @property
    def before_arrival(self) -> bool:
        return self.send_before_arrival is not None


class Delivery(BaseModel):
    """How long a message keeps trying one channel before falling back to the next."""

    model_config = ConfigDict(extra="forbid")

    first_retry_after: Duration = timedelta(seconds=5)
    max_retry_interval: Duration = timedelta(minutes=5)
    give_up_on_channel_after: Duration = timedelta(hours=2)
    attempt_timeout: Duration = timedelta(seconds=60)
    # A send whose outcome is unknown (the provider's answer was lost) on a channel
    # that reports statuses (WhatsApp) waits this long for the status report before
    # the message is declared in doubt for staff; it is never sent again blindly.
    wait_for_provider_status: Duration = timedelta(minutes=2)


class KpiTargets(BaseModel):
    """The targets a hotel's KPIs are held to (runbook "KPIs e Alertas"): the
    dashboard compares against them and the KPI schedule's alerts fire on them.

    ```yaml
    kpi_targets:
      satisfaction_min: 4.5           # average answer to "how satisfied were you?", 0-10
      upsell_conversion_min: 0.18     # offers accepted / offers sent
      response_time_max_minutes: 10   # from a guest's message to the staff's reply
      failure_rate_max: 0.05          # failed / outbound messages
    hotels:
      hotel-rio: {kpi_targets: {satisfaction_min: 8}}
    ```
    """

    model_config = ConfigDict(extra="forbid")

    satisfaction_min: float = Field(default=4.5, ge=0, le=10)
    upsell_conversion_min: float = Field(default=0.18, ge=0, le=1)
    response_time_max_minutes: float = Field(default=10.0, gt=0)
    failure_rate_max: float = Field(default=0.05, ge=0, le=1)

    @property
    def response_time_max(self) -> timedelta:
        return timedelta(minutes=self.response_time_max_minutes)


RETIRED_TARGETS_FILE = "kpi-targets.yaml"


def refuse_retired_targets_file(data_dir: Path) -> None:
    """Raise `PolicyError` when the data directory still holds `kpi-targets.yaml`.

    Its targets now live in the policy (`kpi_targets`, overridable per hotel);
    a file left behind would silently stop applying, so a process refuses to
    start until it is moved (`guest-journey policy kpi-targets FILE` prints it
    in the policy's form)."""
    path = data_dir / RETIRED_TARGETS_FILE
    if path.exists():
        raise PolicyError(
            f"{path} is no longer read: KPI targets belong in the policy file under kpi_targets "
            f"(`guest-journey policy kpi-targets {path}` prints them in that form); move them and delete the file"
        )


class HotelPolicy(BaseModel):
    """The policy of one hotel, overrides applied: what a journey carries."""

    model_config = ConfigDict(extra="forbid")

    checkin_invite_before_arrival: Duration = timedelta(hours=72)
    checkin_reminders_before_arrival: list[Duration] = Field(
        default_factory=lambda: [timedelta(hours=24), timedelta(hours=3)]
    )
    upsell_offers: list[UpsellOffer] = Field(
        default_factory=lambda: [
            UpsellOffer(offer="room_upgrade", send_before_arrival=timedelta(hours=48)),
            UpsellOffer(
                offer="late_checkout",
                send_before_departure=timedelta(hours=20),
                follow_up_after=timedelta(hours=4),
            ),
        ]
    )
    post_stay_feedback_after_departure: Duration = timedelta(hours=2)
    feedback_reminder_after: Duration | None = timedelta(days=2)
    close_after_departure: Duration = timedelta(days=7)
    quiet_hours: QuietHours | None = QuietHours(start=time(22, 0), end=time(8, 0))
    hotel_timezone: str = "America/Sao_Paulo"
    delivery: Delivery = Field(default_factory=Delivery)
    hotel_name: str | None = Field(default=None, max_length=120, description="how messages and pages name the hotel")
    public_review_url: str | None = Field(
        default=None, pattern=r"^https?://\S+$", description="where promoters are invited to leave a review"
    )
    kpi_targets: KpiTargets = Field(default_factory=KpiTargets)

    @field_validator("hotel_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"{value!r} is not an IANA time zone such as 'America/Sao_Paulo'") from error
        return value

    @field_validator("close_after_departure")
    @classmethod
    def _close_later(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be positive")
        return value

    @field_validator("checkin_reminders_before_arrival")
    @classmethod
    def _reminders_distinct(cls, value: list[timedelta]) -> list[timedelta]:
        if len(set(value)) != len(value):
            raise ValueError("lists the same offset twice")
        return value

    @field_validator("upsell_offers")
    @classmethod
    def _offers_distinct(cls, value: list[UpsellOffer]) -> list[UpsellOffer]:
        offers = [offer.offer for offer in value]
        if len(set(offers)) != len(offers):
            raise ValueError("names an offer twice")
        return value

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.hotel_timezone)

    def offer(self, name: str) -> UpsellOffer | None:
        return next((offer for offer in self.upsell_offers if offer.offer == name), None)


class JourneyPolicy(HotelPolicy):
    """The whole policy file: defaults for every hotel plus per-hotel overrides."""

    hotels: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("hotels", mode="before")
    @classmethod
    def _hotel_ids_as_text(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            return {str(key): {} if override is None else override for key, override in value.items()}
        return value

    @model_validator(mode="after")
    def _overrides_valid(self) -> JourneyPolicy:
        for hotel_id in self.hotels:
            self.for_hotel(hotel_id)
        return self

    def for_hotel(self, hotel_id: str) -> HotelPolicy:
        base = self.model_dump(exclude={"hotels"})
        override = self.hotels.get(hotel_id, {})
        try:
            return HotelPolicy.model_validate(_merged(base, override))
        except ValidationError as error:
            raise PolicyError(_describe(error, prefix=f"hotels.{hotel_id}")) from error


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` over `base`; a mapping (quiet_hours, delivery, kpi_targets) is merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merged(base[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ValidationError, prefix: str = "") -> str:
    problems = []
    for item in error.errors():
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, PolicyError):
            problems.append(str(cause))
            continue
        where = ".".join(part for part in (prefix, *(str(part) for part in item["loc"])) if part)
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{where or 'policy'}: {message}")
    return "; ".join(problems)


def parse_policy(data: Any, source: str = "policy") -> JourneyPolicy:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the policy must be a mapping of keys to values")
    try:
        return JourneyPolicy.model_validate(data)
    except ValidationError as error:
        raise PolicyError(f"{source}: {_describe(error)}") from error
    except PolicyError as error:
        raise PolicyError(f"{source}: {error}") from error


def load_policy(path: Path | None) -> JourneyPolicy:
    """The built-in default policy, or the file's, validated."""
    if path is None:
        return JourneyPolicy()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(f"cannot read policy file {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise PolicyError(f"cannot read policy file {path}: not UTF-8 text ({error.reason})") from error
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise PolicyError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}") from error
    return parse_policy(data, source=str(path))
