"""Check a policy file before it is loaded: every problem, each with its line.

`load_policy` stops at the first file it cannot use with one message; an author
editing the file wants all of its mistakes at once and where they are. This
module validates the same models (`JourneyPolicy`, and each hotel's overrides
merged over the defaults as `JourneyPolicy.for_hotel` does), collects every
error, and finds the line of each key path in the YAML node tree
(`yaml.compose`). A file it finds no problem in is finally given to
`parse_policy`, the loader's own validation, so "valid" here means the
service will load it.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from guest_journey.policy import (
    Delivery,
    HotelPolicy,
    JourneyPolicy,
    PolicyError,
    QuietHours,
    QuietHoursMessages,
    UpsellOffer,
    _merged,
    parse_policy,
)

DURATION_HINT = "write it like 'PT72H', 'PT30M' or 'P2D'"
_MODELS: tuple[type[BaseModel], ...] = (
    JourneyPolicy, HotelPolicy, QuietHours, QuietHoursMessages, UpsellOffer, Delivery,
)
KNOWN_KEYS = sorted({name for model in _MODELS for name in model.model_fields})

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One mistake in a policy file: where (line, key path) and what."""

    line: int | None
    where: str
    message: str

    def describe(self, source: str) -> str:
        place = f"{source}:{self.line}" if self.line is not None else source
        return f"{place}: {self.where}: {self.message}" if self.where else f"{place}: {self.message}"


@dataclass
class PolicyCheck:
    """The outcome: the policy as the service would load it, or every problem found."""

    source: str
    policy: JourneyPolicy | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.policy is not None and not self.problems


def check_policy_file(path: Path) -> PolicyCheck:
    """Read and check `path` as `load_policy` would read it (JSON by suffix, else YAML)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return PolicyCheck(source, problems=[Problem(None, "", "no such file")])
    except OSError as error:
        return PolicyCheck(source, problems=[Problem(None, "", f"cannot read it: {error.strerror or error}")])
    except UnicodeDecodeError as error:
        return PolicyCheck(source, problems=[Problem(None, "", f"not UTF-8 text ({error.reason})")])
    return check_policy_text(text, source=source, is_json=path.suffix == ".json")


def check_policy_text(text: str, *, source: str = "policy", is_json: bool = False) -> PolicyCheck:
    if is_json:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            return PolicyCheck(source, problems=[Problem(error.lineno, "", f"not valid JSON: {error.msg} (column {error.colno})")])
        try:  # JSON is YAML, nearly always: its node tree gives the lines
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            root = None
    else:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            return PolicyCheck(source, problems=[_yaml_problem(error)])
    problems = sorted(
        (Problem(_line_of(root, location), _path(location), message)
         for location, message in _validation_problems(data)),
        key=lambda problem: problem.line or 0,
    )
    if problems:
        return PolicyCheck(source, problems=problems)
    try:
        policy = parse_policy(data, source=source)
    except PolicyError as error:  # a rule the checks above do not know: the loader's own words
        return PolicyCheck(source, problems=[Problem(None, "", str(error).removeprefix(f"{source}: "))])
    return PolicyCheck(source, policy=policy)


def _yaml_problem(error: yaml.YAMLError) -> Problem:
    mark = getattr(error, "problem_mark", None)
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    words = str(getattr(error, "problem", None) or error)
    notes = [f"column {mark.column + 1}"] if mark is not None else []
    if context:
        notes.append(f"{context} at line {context_mark.line + 1}" if context_mark is not None else str(context))
    if mark is None:
        mark = context_mark
    line = mark.line + 1 if mark is not None else None
    return Problem(line, "", f"not valid YAML: {words}" + (f" ({'; '.join(notes)})" if notes else ""))


def _validation_problems(data: Any) -> list[tuple[Location, str]]:
    """Every error of the top level and of each hotel's overrides, with its key path."""
    if data is None:
        return []
    if not isinstance(data, dict):
        return [((), "the policy must be a mapping of keys to values")]
    top = dict(data)
    hotels = top.pop("hotels", None)
    found: list[tuple[Location, str]] = []
    base = JourneyPolicy()
    try:
        base = JourneyPolicy.model_validate(top)
    except ValidationError as error:
        found += _errors(error)
    if hotels is None:
        return found
    if not isinstance(hotels, dict):
        return [*found, (("hotels",), "must be a mapping of hotel id to that hotel's overrides")]
    defaults = base.model_dump(exclude={"hotels"})  # the file's defaults when valid, else the built-in ones
    for hotel_id, override in hotels.items():
        prefix: Location = ("hotels", str(hotel_id))
        if override is None:
            continue
        if not isinstance(override, dict):
            found.append((prefix, "must be a mapping of policy keys to values"))
            continue
        try:
            HotelPolicy.model_validate(_merged(defaults, override))
        except ValidationError as error:
            found += [((*prefix, *location), message) for location, message in _errors(error)]
    return found


def _errors(error: ValidationError) -> list[tuple[Location, str]]:
    return [(tuple(item["loc"]), _message(item)) for item in error.errors()]


def _message(item: Any) -> str:
    kind, location = item["type"], item["loc"]
    if kind == "extra_forbidden":
        name = str(location[-1]) if location else ""
        close = difflib.get_close_matches(name, KNOWN_KEYS, n=1)
        return "unknown key" + (f"; did you mean {close[0]!r}?" if close else "")
    if kind.startswith("time_delta"):
        return f"{item['input']!r} is not an ISO 8601 duration; {DURATION_HINT}"
    return str(item["msg"]).removeprefix("Value error, ")


def _path(location: Location) -> str:
    return ".".join(str(part) for part in location)


def _line_of(root: Node | None, location: Location) -> int | None:
    """The 1-based line of the deepest part of `location` the file has: the key's
    own line, or a list item's; for a missing key, its parent's."""
    node, line = root, None
    for part in location:
        if isinstance(node, MappingNode):
            entry = next(
                ((key, value) for key, value in node.value
                 if isinstance(key, ScalarNode) and key.value == str(part)),
                None,
            )
            if entry is None:
                break
            line, node = entry[0].start_mark.line + 1, entry[1]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
