"""`guest-journey policy kpi-targets FILE`: the retired `kpi-targets.yaml`, printed as
the policy's `kpi_targets` (and per-hotel overrides) to paste into the policy file.

The file's keys were already the policy's (`satisfaction_min`,
`upsell_conversion_min`, `response_time_max_minutes`, `failure_rate_max`), with
per-hotel overrides under `hotels`; each is checked as the policy will check it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from guest_journey.policy import KpiTargets


class TargetsFileError(ValueError):
    """The targets file cannot be converted; the message names the bad field."""


def policy_block(path: Path) -> str:
    """The YAML to merge into the policy file, with a comment saying where it came from."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise TargetsFileError(f"{path}: cannot be read as YAML: {error}") from error
    if not isinstance(data, dict):
        raise TargetsFileError(f"{path}: must be a mapping of target names to values")
    hotels = data.pop("hotels", None) or {}
    if not isinstance(hotels, dict):
        raise TargetsFileError(f"{path}: hotels: must be a mapping of hotel ids to targets")
    block: dict[str, Any] = {}
    base = _checked(path, "", data)
    if base:
        block["kpi_targets"] = base
    overrides = {str(hotel_id): _checked(path, f"hotels.{hotel_id}.", {**data, **(override or {})}, override or {})
                 for hotel_id, override in hotels.items()}
    if overrides:
        block["hotels"] = {hotel_id: {"kpi_targets": targets} for hotel_id, targets in overrides.items()}
    header = f"# KPI targets from {path}: merge into the policy file (GUEST_JOURNEY_POLICY_FILE), then delete {path.name}\n"
    return header + (yaml.safe_dump(block, sort_keys=False, allow_unicode=True) if block else "# (the runbook's defaults: nothing to add)\n")


def _checked(path: Path, where: str, merged: dict[str, Any], shown: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        KpiTargets.model_validate(merged)
    except ValidationError as error:
        problems = "; ".join(f"{where}{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors())
        raise TargetsFileError(f"{path}: {problems}") from error
    return dict(merged if shown is None else shown)
