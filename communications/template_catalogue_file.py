"""`catalogue.yaml`: what it may say (each template's channels and variables, the
languages every template needs, the layout), reading it, and the template
directories it must declare. The offers' names are not the catalogue's: they are
shared with the guest and staff pages (`guest_journey.languages.OFFER_NAMES`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from communications.template_errors import TemplateError
from guest_journey.languages import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES, normalise_language
from guest_journey.reservations import Channel

CATALOGUE_FILE = "catalogue.yaml"
_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class TemplateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[Channel] = Field(min_length=1)
    variables: dict[str, Literal["required", "optional"]] = Field(default_factory=dict)


class CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required_languages: list[str] = Field(default_factory=lambda: list(SUPPORTED_LANGUAGES))
    fallback_language: str = DEFAULT_LANGUAGE
    layout: str | None = None
    templates: dict[str, TemplateSpec]

    @field_validator("required_languages")
    @classmethod
    def _normalise_languages(cls, tags: list[str]) -> list[str]:
        return [normalise_language(tag) for tag in tags]

    @field_validator("fallback_language")
    @classmethod
    def _normalise_fallback(cls, tag: str) -> str:
        return normalise_language(tag)

    @field_validator("templates")
    @classmethod
    def _check_names(cls, templates: dict[str, TemplateSpec]) -> dict[str, TemplateSpec]:
        for name in templates:
            if not _TEMPLATE_NAME.match(name):
                raise ValueError(f"template name {name!r} must be lower-case letters, digits and _")
        return templates


def read_catalogue(path: Path) -> CatalogueFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise TemplateError(f"{path}: the template catalogue is missing") from error
    except yaml.YAMLError as error:
        raise TemplateError(f"{path}: not valid YAML: {error}") from error
    try:
        return CatalogueFile.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        raise TemplateError(f"{path}: {problems}") from error


def check_directories(directory: Path, spec: CatalogueFile) -> None:
    """Every template directory (not `_*` or `.*`) is declared in the catalogue."""
    for child in sorted(directory.iterdir()):
        if (
            child.is_dir()
            and not child.name.startswith(("_", "."))
            and child.name not in spec.templates
        ):
            raise TemplateError(
                f"{child.name}/: template directory not declared in {CATALOGUE_FILE}"
            )
