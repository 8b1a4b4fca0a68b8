"""Message templates: a sandboxed Jinja2 catalogue, checked when it loads.

Layout of the template directory (see `templates/catalogue.yaml`):

    catalogue.yaml                   each template's channels and variables
    _layout.html.j2                  wraps the HTML part of every e-mail
    _*.j2                            shared macros
    <template>/<channel>.<language>.j2

A file defines the blocks its channel needs (`subject`, `text`, `html` for
e-mail; `text` for WhatsApp and web chat). Each block is rendered on its own:
subject and text from an environment without autoescaping, html from an
autoescaping one. Both are sandboxed and use `StrictUndefined`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
import yaml
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_datetime_format
from babel.numbers import format_currency, format_decimal
from jinja2 import FileSystemLoader, StrictUndefined, meta, nodes, pass_context, pass_eval_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from communications.rendered import RenderedMessage
from guest_journey.reservations import Channel

logger = logging.getLogger(__name__)

DEFAULT_DIRECTORY = Path(__file__).with_name("templates")
CATALOGUE_FILE = "catalogue.yaml"
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
_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
NamedFormat = Literal["full", "long", "medium", "short"]


class TemplateError(ValueError):
    """A template or the catalogue is wrong, or a message cannot be rendered."""


class TemplateNotFound(TemplateError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no message template named {name!r}")
        self.name = name


class TemplateChannelNotFound(TemplateNotFound):
    def __init__(self, name: str, channel: str) -> None:
        TemplateError.__init__(
            self, f"message template {name!r} has no {channel!r} channel version"
        )
        self.name = name
        self.channel = channel


class TemplateRenderError(TemplateError):
    """Rendering failed: a required variable is missing, a value is invalid, or the sandbox refused."""


class TemplateInfo(BaseModel):
    name: str
    channels: list[str]
    languages: list[str]
    variables: list[str]


class TemplateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[Channel] = Field(min_length=1)
    variables: dict[str, Literal["required", "optional"]] = Field(default_factory=dict)


class CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required_languages: list[str] = Field(default_factory=lambda: ["pt-BR", "en", "es"])
    fallback_language: str = "en"
    layout: str | None = None
    offer_labels: dict[str, dict[str, str]] = Field(default_factory=dict)
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
        """Read and check every template; raise `TemplateError` naming the file, variable and line."""
        directory = Path(directory) if directory is not None else DEFAULT_DIRECTORY
        spec = _read_catalogue(directory / CATALOGUE_FILE)
        if spec.fallback_language not in spec.required_languages:
            raise TemplateError(
                f"{CATALOGUE_FILE}: fallback_language must be one of required_languages"
            )
        text_env = _environment(directory, autoescape=False, offer_labels=spec.offer_labels)
        html_env = _environment(directory, autoescape=True, offer_labels=spec.offer_labels)
        _check_directories(directory, spec)
        for partial in sorted(directory.glob("_*.j2")):
            if partial.name != spec.layout:
                _compile(partial.name, ENGINE_VARIABLES, (), [text_env, html_env])
        layout = None
        if spec.layout is not None:
            layout = _compile(spec.layout, LAYOUT_VARIABLES, (), [html_env])[0]
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
        variant = by_language[self._choose_language(by_language, language)]
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

    def _choose_language(self, available: dict[str, _Variant], requested: str) -> str:
        """Exact tag (pt-BR), then the base language (pt, or any pt-*), then the fallback (en)."""
        try:
            tag = normalise_language(requested)
        except ValueError:
            return self._spec.fallback_language
        if tag in available:
            return tag
        base = tag.split("-")[0]
        if base in available:
            return base
        same_base = sorted(candidate for candidate in available if candidate.split("-")[0] == base)
        return same_base[0] if same_base else self._spec.fallback_language


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


# Loading and checking


def _read_catalogue(path: Path) -> CatalogueFile:
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


def _check_directories(directory: Path, spec: CatalogueFile) -> None:
    for child in sorted(directory.iterdir()):
        if (
            child.is_dir()
            and not child.name.startswith(("_", "."))
            and child.name not in spec.templates
        ):
            raise TemplateError(
                f"{child.name}/: template directory not declared in {CATALOGUE_FILE}"
            )


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
        compiled = _compile(relative, allowed, BLOCKS[channel], envs)
        variants[channel][language] = _Variant(
            relative, language, compiled[0], compiled[1] if len(compiled) > 1 else None
        )
    for channel, by_language in variants.items():
        missing = [language for language in required_languages if language not in by_language]
        if missing:
            expected = ", ".join(f"{name}/{channel.value}.{language}.j2" for language in missing)
            raise TemplateError(f"template {name!r} is missing {expected}")
    return variants


def _compile(
    relative: str,
    allowed: frozenset[str] | set[str],
    blocks: tuple[str, ...],
    envs: list[jinja2.Environment],
) -> list[jinja2.Template]:
    env = envs[0]
    assert env.loader is not None
    try:
        source, filename, _ = env.loader.get_source(env, relative)
        tree = env.parse(source, relative, filename)
        compiled = [each.get_template(relative) for each in envs]
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"{relative}, line {error.lineno}: {error.message}") from error
    if blocks:
        _check_blocks(relative, tree, blocks)
    _check_variables(relative, tree, allowed)
    _check_private_names(relative, tree)
    return compiled


def _check_blocks(relative: str, tree: nodes.Template, expected: tuple[str, ...]) -> None:
    for node in tree.body:
        outside = not isinstance(node, nodes.Block) and not (
            isinstance(node, nodes.Output)
            and all(
                isinstance(part, nodes.TemplateData) and not part.data.strip()
                for part in node.nodes
            )
        )
        if outside:
            raise TemplateError(
                f"{relative}, line {node.lineno}: everything must be inside the blocks {', '.join(expected)}"
            )
    found = {block.name: block.lineno for block in tree.find_all(nodes.Block)}
    for block, line in found.items():
        if block not in expected:
            raise TemplateError(
                f"{relative}, line {line}: unexpected block {block!r}; expected {', '.join(expected)}"
            )
    missing = [block for block in expected if block not in found]
    if missing:
        raise TemplateError(f"{relative}: missing block(s) {', '.join(missing)}")


def _check_variables(
    relative: str, tree: nodes.Template, allowed: frozenset[str] | set[str]
) -> None:
    """Every free variable (not bound by for/set/macro/import) must be declared in the catalogue."""
    undeclared = meta.find_undeclared_variables(tree) - allowed
    if not undeclared:
        return
    lines = {
        name: min(
            node.lineno
            for node in tree.find_all(nodes.Name)
            if node.name == name and node.ctx == "load"
        )
        for name in undeclared
    }
    uses = ", ".join(
        f"{name!r} (line {line})" for name, line in sorted(lines.items(), key=lambda item: item[1])
    )
    raise TemplateError(f"{relative}: variable(s) not declared in {CATALOGUE_FILE}: {uses}")


def _check_private_names(relative: str, tree: nodes.Template) -> None:
    """No `x._y`, `x['_y']` or `x|attr('_y')`: names starting with `_` reach Python's
    internals (`''.__class__`, `self._TemplateReference__context`). The sandbox also
    refuses them when rendering; this names the file and line when loading."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            name: Any = node.attr
        elif isinstance(node, nodes.Getitem):
            name = node.arg.value if isinstance(node.arg, nodes.Const) else None
        else:
            assert isinstance(node, nodes.Filter)
            name = node.args[0].value if node.name == "attr" and node.args and isinstance(
                node.args[0], nodes.Const) else None
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateError(
                f"{relative}, line {node.lineno}: {name!r} is private; "
                "message templates may not use names starting with '_'"
            )


# The environment and its filters


def _environment(
    directory: Path, *, autoescape: bool, offer_labels: dict[str, dict[str, str]]
) -> jinja2.Environment:
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(directory),
        undefined=StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        date=_date,
        datetime=_datetime,
        time=_time,
        money=_money,
        first_name=_first_name,
        nl2br=_nl2br,
        offer_label=_offer_labeller(offer_labels),
    )
    return env


@lru_cache(maxsize=64)
def _locale(tag: str) -> Locale:
    try:
        return Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown hotel_timezone %r: times are shown with their own offset", name)
        return None


def _context_locale(context: Context) -> Locale:
    return _locale(str(context.get("language") or "en"))


def _moment(context: Context, value: Any) -> datetime | date:
    """An ISO 8601 string (or date/datetime) in the hotel's time zone when one is given."""
    moment: datetime | date
    if isinstance(value, date):
        moment = value
    elif isinstance(value, str):
        try:
            moment = (
                date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
            )
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date or datetime") from None
    else:
        raise ValueError(f"{value!r} is not an ISO 8601 date or datetime")
    zone_name = context.get("hotel_timezone")
    zone = _zone(str(zone_name)) if zone_name else None
    if isinstance(moment, datetime) and zone is not None:
        moment = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
    return moment


@pass_context
def _date(context: Context, value: Any, format: str = "long") -> str:
    moment = _moment(context, value)
    day = moment.date() if isinstance(moment, datetime) else moment
    return format_date(day, format=format, locale=_context_locale(context))


@pass_context
def _time(context: Context, value: Any, format: str = "short") -> str:
    moment = _moment(context, value)
    if not isinstance(moment, datetime):
        raise ValueError(f"{value!r} has no time of day")
    return format_time(moment, format=format, locale=_context_locale(context))


@pass_context
def _datetime(context: Context, value: Any, format: NamedFormat = "long") -> str:
    """Date in `format` and time in `short`, joined the way the language does it."""
    moment = _moment(context, value)
    if not isinstance(moment, datetime):
        return _date(context, value, format)
    locale = _context_locale(context)
    pattern = get_datetime_format(format, locale=locale)
    return (
        str(pattern)
        .replace("'", "")
        .replace("{0}", format_time(moment, format="short", locale=locale))
        .replace("{1}", format_date(moment.date(), format=format, locale=locale))
    )


@pass_context
def _money(context: Context, amount: Any, currency: str | None = None) -> str:
    try:
        number = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"{amount!r} is not an amount of money") from None
    locale = _context_locale(context)
    if currency:
        return format_currency(number, str(currency).upper(), locale=locale)
    return format_decimal(number, locale=locale)


def _first_name(name: Any) -> str:
    words = str(name).split()
    return words[0] if words else ""


@pass_eval_context
def _nl2br(eval_context: nodes.EvalContext, value: Any) -> str:
    if not eval_context.autoescape:
        return str(value)
    return Markup("<br>\n").join(escape(line) for line in str(value).splitlines())


def _offer_labeller(labels: dict[str, dict[str, str]]) -> Any:
    """`room_upgrade` -> "Room upgrade" / "Upgrade de quarto"; unknown offers: underscores to spaces."""

    @pass_context
    def offer_label(context: Context, offer: Any) -> str:
        by_language = labels.get(str(offer), {})
        language = str(context.get("language") or "en")
        for candidate in (language, language.split("-")[0], "en"):
            if candidate in by_language:
                return by_language[candidate]
        words = str(offer).replace("_", " ").strip()
        return words[:1].upper() + words[1:]

    return offer_label
