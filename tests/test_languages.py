"""The guests' languages (`guest_journey.languages`): tags, the choice of a
language and its fallbacks, the same choice on pages and in messages, and the
offers' names everywhere a guest or the staff reads them."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from api.guest.visit import request_language
from api.i18n import CATALOGUES, Translator
from api.staff import labels
from communications.templates import TemplateCatalogue
from guest_journey.languages import (
    DEFAULT_LANGUAGE,
    OFFER_NAMES,
    SUPPORTED_LANGUAGES,
    accept_language_tags,
    best_language,
    choose_language,
    from_accept_language,
    normalise_language,
    offer_name,
    offer_names,
    supported_language,
)
from guest_journey.reservations import Channel, Guest


@pytest.fixture(scope="module")
def catalogue() -> TemplateCatalogue:
    return TemplateCatalogue.load()


def page_request(
    *, lang: str | None = None, cookie: str | None = None, accept_language: str | None = None
) -> Request:
    headers = []
    if cookie is not None:
        headers.append((b"cookie", f"guest_lang={cookie}".encode()))
    if accept_language is not None:
        headers.append((b"accept-language", accept_language.encode()))
    query = f"lang={lang}".encode() if lang is not None else b""
    return Request({"type": "http", "method": "GET", "path": "/guest/t/check-in",
                    "query_string": query, "headers": headers})


def offer_in_message(catalogue: TemplateCatalogue, offer: str, language: str) -> str:
    """The web chat reminder of an offer: "... your offer (Room upgrade) is still available ..."."""
    context: dict[str, Any] = {"guest_name": "Maria Oliveira", "upsell_offer": offer,
                               "offer_url": f"https://stay.example/guest/t/offers/{offer}"}
    return catalogue.render("upsell_follow_up", Channel.webchat, language, context).text


def message_language(catalogue: TemplateCatalogue, language: str) -> str:
    context: dict[str, Any] = {"guest_name": "Maria Oliveira", "upsell_offer": "room_upgrade",
                               "offer_url": "https://stay.example/guest/t/offers/room_upgrade"}
    return catalogue.render("upsell_offer", Channel.whatsapp, language, context).language


# Normalisation


@pytest.mark.parametrize(
    ("tag", "normal"),
    [
        ("pt-BR", "pt-BR"),
        ("pt_br", "pt-BR"),
        ("PT-br", "pt-BR"),
        ("  es-mx ", "es-MX"),
        ("es-419", "es-419"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("pt--BR", "pt-BR"),
        ("en-", "en"),
        ("EN", "en"),
        ("en-US-x-Private", "en-US-x-private"),
    ],
)
def test_a_tag_is_written_one_way(tag: str, normal: str) -> None:
    assert normalise_language(tag) == normal


@pytest.mark.parametrize("tag", ["", "  ", "-pt", "_es", "419", "es419", "*", "pt BR", "es.UTF-8"])
def test_a_tag_names_a_language_first(tag: str) -> None:
    with pytest.raises(ValueError, match="not a language tag"):
        normalise_language(tag)


def test_supported_languages_are_in_their_normal_form() -> None:
    assert SUPPORTED_LANGUAGES == ("pt-BR", "en", "es")
    assert all(normalise_language(language) == language for language in SUPPORTED_LANGUAGES)
    assert DEFAULT_LANGUAGE in SUPPORTED_LANGUAGES


# Choosing a language, and falling back


@pytest.mark.parametrize(
    ("requested", "chosen"),
    [
        ("pt-BR", "pt-BR"),
        ("pt_br", "pt-BR"),
        ("pt", "pt-BR"),
        ("pt-PT", "pt-BR"),
        ("pt-Latn-BR", "pt-BR"),
        ("es", "es"),
        ("es-MX", "es"),
        ("es_419", "es"),
        ("en-GB", "en"),
        ("en-US.UTF-8", "en"),
        ("de", None),
        ("zh-Hant-TW", None),
        ("-pt", None),
        ("", None),
        (None, None),
    ],
)
def test_the_supported_language_that_answers_a_tag(requested: str | None, chosen: str | None) -> None:
    assert supported_language(requested) == chosen


def test_the_first_candidate_that_is_answered_wins_else_the_fallback() -> None:
    assert choose_language(None, "de", "es-AR", "pt") == "es"
    assert choose_language("fr", "", None) == DEFAULT_LANGUAGE == "en"
    assert choose_language() == "en"
    assert choose_language("fr", fallback="pt-BR") == "pt-BR"


def test_other_available_languages_exact_then_base_then_same_base_in_order() -> None:
    files = {"en", "pt-BR", "pt-PT", "fr-CA"}

    assert best_language("pt-PT", files) == "pt-PT"
    assert best_language("pt-AO", files) == "pt-BR"  # sorted: pt-BR before pt-PT
    assert best_language("pt", files) == "pt-BR"
    assert best_language("fr", files) == "fr-CA"
    assert best_language("en-AU", files) == "en"
    assert best_language("es", files) is None
    assert choose_language("es", available=files, fallback="en") == "en"


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        (None, None),
        ("", None),
        ("pt-BR,pt;q=0.9,en;q=0.8", "pt-BR"),
        ("de,es;q=0.5", "es"),
        ("de", None),
        ("*", None),
        ("fr;q=0.9, en;q=0.1", "en"),
        ("en;q=0,es", "es"),
        ("en;q=abc,es;q=0.5", "es"),  # a q that is not a number counts as 0
        ("es;q=0.5,pt;q=0.5", "es"),  # same q: the earlier one
        ("  es-MX ; q=0.8 , en ; q=0.9", "en"),
        ("de;q=1,en-GB;q=0.7,es;q=0.7", "en"),
    ],
)
def test_accept_language(header: str | None, chosen: str | None) -> None:
    assert from_accept_language(header) == chosen


def test_accept_language_reads_twenty_tags() -> None:
    header = ",".join(["de"] * 20 + ["es"])

    assert len(accept_language_tags(header)) == 20
    assert from_accept_language(header) is None


def test_a_page_asks_the_link_then_the_cookie_then_the_guest_then_the_browser() -> None:
    assert request_language(page_request(lang="es", cookie="en", accept_language="en"), "pt-BR") == "es"
    assert request_language(page_request(lang="de", cookie="en"), "pt-BR") == "en"
    assert request_language(page_request(accept_language="es"), "pt-PT") == "pt-BR"
    assert request_language(page_request(accept_language="es"), "de") == "es"
    assert request_language(page_request(), "de") == "en"


# Pages and messages choose alike

# A guest's language as the reservation system may send it, and tags as they come.
AGREED = [
    "pt-BR", "pt_br", "PT-br", "pt", "pt-PT", "pt-AO", "pt-Latn-BR", "pt--BR",
    "es", "ES", "es-MX", "es-419", "es_419", "en", "en-GB", "en_US", "en-",
    "de", "fr-CA", "zh-Hant-TW", "i-klingon", "x-pt", "", " ", "  pt-BR ",
    # Tags that do not start with a language: pages said English, messages the
    # language after the separator; both say English now (docs/architecture.md).
    "-pt", "_es",
    "123", "*", "pt BR", "es419", "en-US.UTF-8", "es.UTF-8", "english", "por", "spa",
]


@pytest.mark.parametrize("tag", AGREED)
def test_pages_and_messages_choose_the_same_language(catalogue: TemplateCatalogue, tag: str) -> None:
    on_pages = request_language(page_request(), tag)

    assert Translator(tag).language == on_pages
    assert message_language(catalogue, tag) == on_pages
    assert on_pages == choose_language(tag)


@pytest.mark.parametrize("tag", ["pt-br", "pt-PT", "pt", "es-MX", "es-419", "en-GB", "de", "zh-hant-tw"])
def test_a_reservations_language_is_answered_alike(catalogue: TemplateCatalogue, tag: str) -> None:
    language = Guest(name="Maria Oliveira", language=tag).language

    assert message_language(catalogue, language) == request_language(page_request(), language)


def test_pages_and_messages_speak_the_supported_languages(catalogue: TemplateCatalogue) -> None:
    assert tuple(CATALOGUES) == SUPPORTED_LANGUAGES
    for info in catalogue.describe():
        assert sorted(info.languages) == sorted(SUPPORTED_LANGUAGES)
    for language in SUPPORTED_LANGUAGES:
        assert Translator(language).language == language
        assert message_language(catalogue, language) == language


# The offers' names


@pytest.mark.parametrize("offer", sorted(OFFER_NAMES))
def test_every_offer_has_a_name_in_every_supported_language(offer: str) -> None:
    names = OFFER_NAMES[offer]

    assert set(names) == set(SUPPORTED_LANGUAGES)
    assert all(name.strip() == name and name for name in names.values())


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("offer", sorted(OFFER_NAMES))
def test_pages_messages_and_staff_name_an_offer_alike(
    catalogue: TemplateCatalogue, offer: str, language: str
) -> None:
    name = OFFER_NAMES[offer][language]

    assert Translator(language).offer_title(offer) == name
    assert f"({name})" in offer_in_message(catalogue, offer, language)
    assert Translator(language).offer_description(offer)  # the page's own words
    if language == labels.LANGUAGE:
        assert labels.offer_label(offer) == name


def test_offer_names_fall_back_like_languages() -> None:
    assert offer_name("room_upgrade", "pt-PT") == "Upgrade de quarto"
    assert offer_name("room_upgrade", "es-MX") == "Mejora de habitación"
    assert offer_name("room_upgrade", "de") == "Room upgrade"
    assert offer_names("pt") == labels.OFFERS


def test_an_offer_without_a_name_is_shown_by_its_code(catalogue: TemplateCatalogue) -> None:
    assert offer_name("spa_day_pass", "es") == "Spa day pass"
    assert Translator("es").offer_title("spa_day_pass") == "Spa day pass"
    assert Translator("es").offer_description("spa_day_pass") is None
    assert "(Spa day pass)" in offer_in_message(catalogue, "spa_day_pass", "es")
    assert labels.offer_label("spa_day_pass") == "spa day pass"  # staff see codes as they are


@pytest.mark.parametrize("offer", ["title", "accept", "price"])
def test_an_offer_named_like_a_page_word_is_not_given_that_word(
    catalogue: TemplateCatalogue, offer: str
) -> None:
    # Offer titles once came from the page catalogue (`offer.<offer>`), so an offer
    # called `title` was titled "A special offer for your stay" on its page, and
    # "Title" in its messages.
    title = offer.capitalize()

    assert Translator("en").offer_title(offer) == title
    assert f"({title})" in offer_in_message(catalogue, offer, "en")
