from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from communications.templates import (
    TemplateCatalogue,
    TemplateChannelNotFound,
    TemplateError,
    TemplateNotFound,
    TemplateRenderError,
)
from guest_journey.reservations import Channel

NAMES = [
    "checkin_invitation",
    "checkin_reminder",
    "upsell_offer",
    "upsell_follow_up",
    "guest_post_stay_feedback",
    "feedback_reminder",
    "free_text",
]
LANGUAGES = ["pt-BR", "en", "es"]
# What each template must show the guest: the link it exists for, or the staff's words.
ESSENTIAL = {
    "checkin_invitation": "checkin_url",
    "checkin_reminder": "checkin_url",
    "upsell_offer": "offer_url",
    "upsell_follow_up": "offer_url",
    "guest_post_stay_feedback": "feedback_url",
    "feedback_reminder": "feedback_url",
    "free_text": "body",
}


@pytest.fixture(scope="module")
def catalogue() -> TemplateCatalogue:
    return TemplateCatalogue.load()


def guest_context(**overrides: Any) -> dict[str, Any]:
    base = "https://stay.example/guest/tok3n"
    context: dict[str, Any] = {
        "guest_name": "Maria Oliveira",
        "hotel_id": "copa-01",
        "hotel_name": "Hotel Copa Mar",
        "arrival": "2025-03-14T15:00:00-03:00",
        "departure": "2025-03-17T11:00:00-03:00",
        "hotel_timezone": "America/Sao_Paulo",
        "room_type": "deluxe_ocean",
        "journey_stage": "pre_arrival",
        "step_key": "checkin_invitation",
        "upsell_offer": "room_upgrade",
        "offer_price": "150.00",
        "offer_currency": "BRL",
        "body": "Your room is ready early: come whenever you like.",
        "checkin_url": f"{base}/check-in",
        "offer_url": f"{base}/offers/room_upgrade",
        "accept_url": f"{base}/offers/room_upgrade?answer=accept",
        "decline_url": f"{base}/offers/room_upgrade?answer=decline",
        "feedback_url": f"{base}/feedback",
        "chat_url": f"{base}/chat",
        "unsubscribe_url": f"{base}/unsubscribe",
    }
    context.update(overrides)
    return context


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", list(Channel))
@pytest.mark.parametrize("name", NAMES)
def test_every_template_renders_in_every_language_and_channel(
    catalogue: TemplateCatalogue, name: str, channel: Channel, language: str
) -> None:
    context = guest_context()
    rendered = catalogue.render(name, channel, language, context)

    assert rendered.template == name
    assert rendered.language == language
    assert context[ESSENTIAL[name]] in rendered.text
    assert "None" not in rendered.text
    if name != "free_text":
        assert "Maria" in rendered.text
    if channel is Channel.email:
        assert rendered.subject and "\n" not in rendered.subject
        assert rendered.html is not None
        assert rendered.html.startswith("<!DOCTYPE html>")
        assert f'<html lang="{language}">' in rendered.html
        assert context[ESSENTIAL[name]] in rendered.html
        assert "None" not in rendered.html
        assert "src=" not in rendered.html  # no external resources
    else:
        assert rendered.subject is None and rendered.html is None


@pytest.mark.parametrize("name", NAMES)
def test_optional_variables_may_be_missing_or_null(catalogue: TemplateCatalogue, name: str) -> None:
    context = guest_context(room_type=None, offer_price=None, offer_currency=None)
    for optional in (
        "hotel_name",
        "accept_url",
        "decline_url",
        "chat_url",
        "unsubscribe_url",
        "departure",
    ):
        del context[optional]

    for language in LANGUAGES:
        rendered = catalogue.render(name, Channel.email, language, context)
        assert "None" not in rendered.text and "None" not in (rendered.html or "")
        assert "None" not in (rendered.subject or "")


@pytest.mark.parametrize(
    ("requested", "chosen"),
    [
        ("pt-BR", "pt-BR"),
        ("pt_br", "pt-BR"),
        ("pt", "pt-BR"),
        ("pt-PT", "pt-BR"),
        ("es-MX", "es"),
        ("en-GB", "en"),
        ("de", "en"),
        ("", "en"),
    ],
)
def test_language_falls_back_to_the_base_language_then_english(
    catalogue: TemplateCatalogue, requested: str, chosen: str
) -> None:
    rendered = catalogue.render("checkin_invitation", Channel.whatsapp, requested, guest_context())

    assert rendered.language == chosen


def test_html_is_escaped_and_text_is_not(catalogue: TemplateCatalogue) -> None:
    name = "<script>alert(1)</script>"
    rendered = catalogue.render(
        "checkin_invitation", Channel.email, "en", guest_context(guest_name=name)
    )

    assert name in rendered.text
    assert rendered.html is not None
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html


def test_staff_text_keeps_its_line_breaks_in_html(catalogue: TemplateCatalogue) -> None:
    body = "Hello Maria,\nyour taxi is booked for 10:00 & waiting <outside>."
    rendered = catalogue.render("free_text", Channel.email, "en", guest_context(body=body))

    assert body in rendered.text
    assert "Hello Maria,<br>\nyour taxi is booked for 10:00 &amp; waiting &lt;outside&gt;." in (
        rendered.html or ""
    )


def test_dates_are_shown_in_the_hotel_time_zone_and_language(catalogue: TemplateCatalogue) -> None:
    late_night_utc = "2025-03-15T01:30:00+00:00"  # still 14 March in São Paulo
    context = guest_context(arrival=late_night_utc)

    pt = catalogue.render("checkin_reminder", Channel.whatsapp, "pt-BR", context)
    en = catalogue.render("checkin_reminder", Channel.whatsapp, "en", context)

    assert "sexta-feira, 14 de março de 2025" in pt.text
    assert "Friday, March 14, 2025" in en.text


def test_offer_label_and_price_follow_the_language(catalogue: TemplateCatalogue) -> None:
    pt = catalogue.render("upsell_offer", Channel.whatsapp, "pt-BR", guest_context())
    es = catalogue.render(
        "upsell_offer", Channel.whatsapp, "es", guest_context(offer_currency="EUR")
    )
    unknown = catalogue.render(
        "upsell_offer", Channel.webchat, "en", guest_context(upsell_offer="spa_day_pass")
    )

    assert "Upgrade de quarto" in pt.text and "R$\xa0150,00" in pt.text
    assert "Mejora de habitación" in es.text and "150,00\xa0€" in es.text
    assert "Spa day pass" in unknown.text


def test_unsubscribe_link_only_on_offers(catalogue: TemplateCatalogue) -> None:
    context = guest_context()
    offer = catalogue.render("upsell_offer", Channel.email, "en", context)
    invitation = catalogue.render("checkin_invitation", Channel.email, "en", context)

    assert context["unsubscribe_url"] in (offer.html or "")
    assert context["unsubscribe_url"] not in (invitation.html or "")


def test_missing_required_variable_is_a_render_error(catalogue: TemplateCatalogue) -> None:
    context = guest_context()
    del context["checkin_url"]

    with pytest.raises(TemplateRenderError, match="checkin_url"):
        catalogue.render("checkin_invitation", Channel.email, "en", context)


def test_invalid_date_is_a_render_error(catalogue: TemplateCatalogue) -> None:
    with pytest.raises(TemplateRenderError, match="not an ISO 8601"):
        catalogue.render(
            "checkin_invitation", Channel.email, "en", guest_context(arrival="next friday")
        )


def test_unknown_template_and_channel(catalogue: TemplateCatalogue) -> None:
    with pytest.raises(TemplateNotFound, match="no_such_template") as not_found:
        catalogue.render("no_such_template", Channel.email, "en", guest_context())
    with pytest.raises(TemplateChannelNotFound, match="sms") as no_channel:
        catalogue.render("checkin_invitation", "sms", "en", guest_context())

    assert isinstance(not_found.value, TemplateError) and isinstance(not_found.value, ValueError)
    assert isinstance(no_channel.value, TemplateNotFound)
    assert catalogue.has("free_text") and not catalogue.has("no_such_template")


def test_describe_lists_names_channels_languages_and_variables(
    catalogue: TemplateCatalogue,
) -> None:
    infos = {info.name: info for info in catalogue.describe()}

    assert sorted(infos) == sorted(NAMES)
    for info in infos.values():
        assert info.channels == ["email", "whatsapp", "webchat"]
        assert {"pt-BR", "en", "es"} <= set(info.languages)
        assert "guest_name" in info.variables
    assert "body" in infos["free_text"].variables
    assert {"checkin_url", "arrival"} <= set(infos["checkin_invitation"].variables)
    assert {"upsell_offer", "offer_url", "offer_price"} <= set(infos["upsell_offer"].variables)


# A catalogue of our own, to check what loading rejects.


def make_templates(
    directory: Path,
    files: dict[str, str],
    *,
    channels: tuple[str, ...] = ("webchat",),
    variables: dict[str, str] | None = None,
    languages: tuple[str, ...] = ("en",),
) -> Path:
    catalogue = {
        "required_languages": list(languages),
        "fallback_language": "en",
        "templates": {
            "hello": {
                "channels": list(channels),
                "variables": variables or {"guest_name": "required"},
            }
        },
    }
    (directory / "catalogue.yaml").write_text(yaml.safe_dump(catalogue), encoding="utf-8")
    for relative, source in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return directory


def test_undeclared_variable_is_rejected_naming_variable_and_line(tmp_path: Path) -> None:
    source = (
        "{% block text %}\nHi {{ guest_name }},\n{% for night in nights %}{{ night }}{% endfor %}\n"
    )
    source += "{% set greeting = 'hello' %}{{ greeting }} {{ room_number }}\n{% endblock %}\n"
    make_templates(tmp_path, {"hello/webchat.en.j2": source})

    with pytest.raises(TemplateError) as rejected:
        TemplateCatalogue.load(tmp_path)

    message = str(rejected.value)
    assert "hello/webchat.en.j2" in message
    assert "'nights' (line 3)" in message
    assert "'room_number' (line 4)" in message
    assert "night'" not in message.replace("'nights'", "") and "greeting" not in message


def test_names_bound_by_for_set_and_macro_are_not_variables(tmp_path: Path) -> None:
    source = (
        "{% block text %}{% macro shout(word) %}{{ word|upper }}{% endmacro %}"
        "{% set parts = guest_name.split() %}{% for part in parts %}{{ shout(part) }} {% endfor %}{% endblock %}"
    )
    make_templates(tmp_path, {"hello/webchat.en.j2": source})

    rendered = TemplateCatalogue.load(tmp_path).render(
        "hello", "webchat", "en", {"guest_name": "Ana Lima"}
    )

    assert rendered.text == "ANA LIMA"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"hello/webchat.en.j2": "{% block text %}{{ guest_name }{% endblock %}"}, "line 1"),
        ({"hello/webchat.en.j2": "{% block text %}{{ guest_name|shiny }}{% endblock %}"}, "shiny"),
        (
            {"hello/webchat.en.j2": "Hi\n{% block text %}{{ guest_name }}{% endblock %}"},
            "inside the blocks",
        ),
        (
            {
                "hello/webchat.en.j2": "{% block subject %}x{% endblock %}{% block text %}y{% endblock %}"
            },
            "subject",
        ),
        (
            {"hello/webchat.es.j2": "{% block text %}{{ guest_name }}{% endblock %}"},
            "hello/webchat.en.j2",
        ),
        ({"hello/sms.en.j2": "{% block text %}x{% endblock %}"}, "'sms'"),
        (
            {"hello/webchat.en.j2": "{% block text %}x{% endblock %}", "other/webchat.en.j2": "x"},
            "other/",
        ),
    ],
    ids=[
        "syntax",
        "unknown-filter",
        "outside-block",
        "extra-block",
        "missing-language",
        "unknown-channel",
        "undeclared-template",
    ],
)
def test_broken_template_directories_are_rejected(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    make_templates(tmp_path, files)

    with pytest.raises(TemplateError, match=expected.replace("(", r"\(")):
        TemplateCatalogue.load(tmp_path)


def test_every_required_language_must_exist(tmp_path: Path) -> None:
    make_templates(
        tmp_path,
        {
            f"hello/email.{lang}.j2": "{% block subject %}s{% endblock %}{% block text %}t{% endblock %}"
            "{% block html %}h{% endblock %}"
            for lang in ("en", "pt-BR")
        },
        channels=("email",),
        languages=("pt-BR", "en", "es"),
    )

    with pytest.raises(TemplateError, match=r"hello/email\.es\.j2"):
        TemplateCatalogue.load(tmp_path)


def test_email_needs_subject_text_and_html(tmp_path: Path) -> None:
    make_templates(
        tmp_path, {"hello/email.en.j2": "{% block text %}t{% endblock %}"}, channels=("email",)
    )

    with pytest.raises(TemplateError, match="missing block.*subject, html"):
        TemplateCatalogue.load(tmp_path)


def test_catalogue_errors_name_the_field(tmp_path: Path) -> None:
    (tmp_path / "catalogue.yaml").write_text(
        "templates:\n  hello:\n    channels: [pigeon]\n", encoding="utf-8"
    )

    with pytest.raises(TemplateError, match=r"templates\.hello\.channels\.0"):
        TemplateCatalogue.load(tmp_path)


def test_channel_not_declared_for_a_template(tmp_path: Path) -> None:
    make_templates(
        tmp_path, {"hello/webchat.en.j2": "{% block text %}{{ guest_name }}{% endblock %}"}
    )
    catalogue = TemplateCatalogue.load(tmp_path)

    with pytest.raises(TemplateChannelNotFound, match="whatsapp"):
        catalogue.render("hello", Channel.whatsapp, "en", {"guest_name": "Ana"})


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ guest_name.__class__.__mro__[1].__subclasses__() }}",
        "{{ guest_name.format.__globals__ }}",
        "{{ lipsum.__globals__ }}",
    ],
)
def test_sandbox_escapes_are_render_errors(tmp_path: Path, escape: str) -> None:
    make_templates(
        tmp_path, {"hello/webchat.en.j2": "{% block text %}" + escape + "{% endblock %}"}
    )

    try:
        catalogue = TemplateCatalogue.load(tmp_path)
    except TemplateError as rejected:  # at load: a private name, or one it does not declare
        assert "is private" in str(rejected) or "lipsum" in str(rejected)
        return
    with pytest.raises(TemplateRenderError):
        catalogue.render("hello", "webchat", "en", {"guest_name": "Ana"})
