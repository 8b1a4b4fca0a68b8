"""Message templates: the catalogue of a template directory, checked when it
loads, and the rendering of a message per channel and language.

Layout of the template directory (see `templates/catalogue.yaml`):

    catalogue.yaml                   each template's channels and variables
    _layout.html.j2                  wraps the HTML part of every e-mail
    _*.j2                            shared macros
    <template>/<channel>.<language>.j2

A file defines the blocks its channel needs (`subject`, `text`, `html` for
e-mail; `text` for WhatsApp and web chat). Each block is rendered on its own:
subject and text from an environment without autoescaping, html from an
autoescaping one. Both are sandboxed and use `StrictUndefined`
(`communications.template_environment`).

Beside this module: `template_catalogue_file` (what `catalogue.yaml` may say),
`template_checks` (the checks of a template's text at load) and `template_errors`.
Language tags, which file answers a guest's language and the offers' names follow
the rules guest pages follow too (`guest_journey.languages`).
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
from markupsafe import Markup
from pydantic import BaseModel

from communications.rendered import RenderedMessage
from communications.template_catalogue_file import (
    CATALOGUE_FILE,
    CatalogueFile,
    TemplateSpec,
    check_directories,
    read_catalogue,
)
from communications.template_checks import compile_checked
from communications.template_environment import sandboxed_environment
from communications.template_errors import (
    TemplateChannelNotFound,
    TemplateError,
    TemplateNotFound,
    TemplateRenderError,
)
from guest_journey.languages import choose_language, normalise_language
from guest_journey.reservations import Channel

__all__ = [
    "TemplateCatalogue",
    "TemplateChannelNotFound",
    "TemplateError",
    "TemplateInfo",
    "TemplateNotFound",
    "TemplateRenderError",
]

logger = logging.getLogger(__name__)

DEFAULT_DIRECTORY = Path(__file__).with_name("templates")
BLOCKS: dict[Channel, tuple[str, ...]] = {
    Channel.email: ("subject", "text", "html"),
    Channel.whatsapp: ("text",),
    Channel.webchat: ("text",),
}
# Always in the context: the language tag of the file being rendered.
ENGINE_VARIABLES = frozenset({"language"})
LAYOUT_VARIABLES = ENGINE_VARIABLES | {"content", "subject", "hotel_name", "unsubscribe_url"}
_FILE_NAME = re.compile(
    r"^(?P<channel>[a-z]+)\.(?P<language>[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*)\.j2$"
)


class TemplateInfo(BaseModel):
    name: str
    channels: list[str]
    languages: list[str]
    variables: list[str]


@dataclass(frozen=True)
class _Variant:
    """One file: a template in one channel and language, compiled for text and for HTML."""

    path: str
    language: str
    text: jinja2.Template
    html: jinja2.Template | None


class TemplateCatalogue:
    def __init__(
        self,
        spec: CatalogueFile,
        variants: dict[str, dict[Channel, dict[str, _Variant]]],
        layout: jinja2.Template | None,
    ) -> None:
        self._spec = spec
        self._variants = variants
        self._layout = layout

    @classmethod
    def load(cls, directory: Path | None = None) -> TemplateCatalogue:
        """Read and check every template; raise `TemplateError` naming the file, variable and line.

        A catalogue is read once per process while its files stay as they are (each
        file's name, size and modification time): an API process builds its app once,
        but tests and tools build many, and compiling every template takes a second."""
        directory = Path(directory) if directory is not None else DEFAULT_DIRECTORY
        return _load_once(directory.resolve(), _files_as_they_are(directory))

    @classmethod
    def _read(cls, directory: Path) -> TemplateCatalogue:
        spec = read_catalogue(directory / CATALOGUE_FILE)
        if spec.fallback_language not in spec.required_languages:
            raise TemplateError(
                f"{CATALOGUE_FILE}: fallback_language must be one of required_languages"
            )
        text_env = sandboxed_environment(directory, autoescape=False)
        html_env = sandboxed_environment(directory, autoescape=True)
        check_directories(directory, spec)
        for partial in sorted(directory.glob("_*.j2")):
            if partial.name != spec.layout:
                compile_checked(partial.name, ENGINE_VARIABLES, (), [text_env, html_env])
        layout = None
        if spec.layout is not None:
            layout = compile_checked(spec.layout, LAYOUT_VARIABLES, (), [html_env])[0]
        variants = {
            name: _load_variants(
                directory, name, template, spec.required_languages, text_env, html_env
            )
            for name, template in spec.templates.items()
        }
        logger.debug("loaded %d message templates from %s", len(variants), directory)
        return cls(spec, variants, layout)

    def has(self, name: str) -> bool:
        return name in self._spec.templates

    def variables(self, name: str) -> dict[str, Literal["required", "optional"]]:
        """A template's variables, each `required` or `optional`; {} for an unknown template."""
        template = self._spec.templates.get(name)
        return dict(template.variables) if template is not None else {}

    def describe(self) -> list[TemplateInfo]:
        infos = []
        for name, template in self._spec.templates.items():
            languages = set.intersection(*(set(files) for files in self._variants[name].values()))
            infos.append(
                TemplateInfo(
                    name=name,
                    channels=[channel.value for channel in template.channels],
                    languages=sorted(languages),
                    variables=sorted(template.variables),
                )
            )
        return infos

    def render(
        self, name: str, channel: Channel | str, language: str, context: dict[str, Any]
    ) -> RenderedMessage:
        template = self._spec.templates.get(name)
        if template is None:
            raise TemplateNotFound(name)
        resolved = _as_channel(channel)
        by_language = self._variants[name].get(resolved) if resolved is not None else None
        if by_language is None:
            raise TemplateChannelNotFound(name, str(channel))
        chosen = choose_language(
            language, available=by_language, fallback=self._spec.fallback_language
        )
        variant = by_language[chosen]
        variables = _variables(name, template, variant.language, context)
        try:
            return self._render(name, template, variant, variables)
        except TemplateError:
            raise
        except (jinja2.TemplateError, ValueError, TypeError, LookupError, ArithmeticError) as error:
            raise TemplateRenderError(f"{variant.path}: {error}") from error

    def _render(
        self, name: str, template: TemplateSpec, variant: _Variant, variables: dict[str, Any]
    ) -> RenderedMessage:
        text = _tidy(_render_block(variant.text, "text", variables))
        if variant.html is None:
            return RenderedMessage(template=name, language=variant.language, text=text)
        subject = " ".join(_render_block(variant.text, "subject", variables).split())
        html = _render_block(variant.html, "html", variables).strip()
        if self._layout is not None:
            html = self._layout.render(
                content=Markup(html),
                subject=subject,
                language=variant.language,
                hotel_name=variables.get("hotel_name"),
                # Only templates that declare it (offers) carry the unsubscribe link.
                unsubscribe_url=variables.get("unsubscribe_url")
                if "unsubscribe_url" in template.variables
                else None,
            ).strip()
        return RenderedMessage(
            template=name, language=variant.language, subject=subject, text=text, html=html
        )


def _as_channel(channel: Channel | str) -> Channel | None:
    try:
        return Channel(channel)
    except ValueError:
        return None


def _variables(
    name: str, template: TemplateSpec, language: str, context: dict[str, Any]
) -> dict[str, Any]:
    """The context, with optional variables defaulted to None; a missing required one is an error."""
    missing = [
        variable
        for variable, need in template.variables.items()
        if need == "required" and context.get(variable) is None
    ]
    if missing:
        raise TemplateRenderError(
            f"template {name!r} needs the variable(s) {', '.join(missing)} in its context"
        )
    variables: dict[str, Any] = dict.fromkeys(template.variables)
    variables.update(context)
    variables["language"] = language
    return variables


def _render_block(template: jinja2.Template, block: str, variables: dict[str, Any]) -> str:
    context = template.new_context(variables)
    return "".join(template.blocks[block](context))


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _load_variants(
    directory: Path,
    name: str,
    template: TemplateSpec,
    required_languages: list[str],
    text_env: jinja2.Environment,
    html_env: jinja2.Environment,
) -> dict[Channel, dict[str, _Variant]]:
    variants: dict[Channel, dict[str, _Variant]] = {channel: {} for channel in template.channels}
    allowed = ENGINE_VARIABLES | set(template.variables)
    for path in sorted((directory / name).glob("*.j2")):
        relative = f"{name}/{path.name}"
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise TemplateError(f"{relative}: a template file is named <channel>.<language>.j2")
        channel = _as_channel(match["channel"])
        if channel not in variants:
            raise TemplateError(
                f"{relative}: channel {match['channel']!r} is not declared for {name!r}"
            )
        language = normalise_language(match["language"])
        envs = [text_env, html_env] if "html" in BLOCKS[channel] else [text_env]
        compiled = compile_checked(relative, allowed, BLOCKS[channel], envs)
        variants[channel][language] = _Variant(
            relative, language, compiled[0], compiled[1] if len(compiled) > 1 else None
        )
    for channel, by_language in variants.items():
        missing = [language for language in required_languages if language not in by_language]
        if missing:
            expected = ", ".join(f"{name}/{channel.value}.{language}.j2" for language in missing)
            raise TemplateError(f"template {name!r} is missing {expected}")
    return variants


@functools.lru_cache(maxsize=8)
def _load_once(directory: Path, files: tuple[tuple[str, int, int], ...]) -> TemplateCatalogue:
    """The catalogue of `directory` as its `files` are (the cache's key): a catalogue is
    never changed once loaded, so one is shared."""
    return TemplateCatalogue._read(directory)


def _files_as_they_are(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """(path, size, modification time) of every file under the directory."""
    return tuple(
        (str(path.relative_to(directory)), stat.st_size, stat.st_mtime_ns)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and (stat := path.stat())
    )
