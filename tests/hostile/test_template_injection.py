"""Template injection: Jinja2 syntax in template sources is refused when the
catalogue loads, naming file and line; Jinja2 syntax in what guests and staff
type is only ever text, escaped in HTML.

Message templates load from one directory (`TemplateCatalogue.load(directory)`;
the service uses the built-in one, a hotel may point it at a copy): the
directory here is a test's own. What tests/communications/test_templates.py
already shows is not repeated: undeclared names are refused at load, the
sandbox refuses `lipsum.__globals__` and friends, `<script>` is escaped in
e-mail HTML and kept in text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from markupsafe import escape

from communications.channels.webchat import WebchatSender
from communications.templates import TemplateCatalogue, TemplateError, TemplateRenderError
from guest_journey.reservations import Channel
from tests.api.test_guest_pages import GOOD_CHECKIN, book, csrf, post_form
from tests.communications.test_templates import guest_context, make_templates
from tests.workflows.journeys import end

# What an attacker writes, in a template or in a value.
INJECTIONS = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
    "{{ config }}",
    "{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{% set ns = namespace() %}{{ ns.__init__.__globals__ }}",
    "{{ ''['__class__'] }}",
    "{{ ''|attr('__class__') }}",
]
# Why each injection is refused at load.
PRIVATE = "is private; message templates may not use names starting with '_'"
REFUSED_FOR = [PRIVATE] * 3 + ["not declared in catalogue.yaml: 'config'"] + [PRIVATE] * 6


def catalogue_with(tmp_path: Path, line: str) -> Path:
    """A catalogue whose one template carries `line` as its third line."""
    source = "{% block text %}\nHi {{ guest_name }},\n" + line + "\n{% endblock %}\n"
    return make_templates(tmp_path, {"hello/webchat.en.j2": source})


# -- (a) in template sources: refused when the catalogue loads ---------------------


@pytest.mark.parametrize(("line", "name"), list(zip(INJECTIONS, REFUSED_FOR, strict=True)), ids=INJECTIONS)
def test_injection_in_a_template_source_is_refused_at_load(tmp_path: Path, line: str, name: str) -> None:
    catalogue_with(tmp_path, line)

    with pytest.raises(TemplateError) as refused:
        TemplateCatalogue.load(tmp_path)

    message = str(refused.value)
    assert "hello/webchat.en.j2" in message and "line 3" in message and name in message, message


def test_a_private_name_in_a_shared_macro_file_is_refused_too(tmp_path: Path) -> None:
    catalogue_with(tmp_path, "{{ guest_name }}")
    (tmp_path / "_macros.j2").write_text("{% macro leak(x) %}{{ x.__class__ }}{% endmacro %}\n")

    with pytest.raises(TemplateError, match=r"_macros\.j2, line 1: '__class__' is private"):
        TemplateCatalogue.load(tmp_path)


@pytest.mark.parametrize(
    "line",
    [
        "{% set name = '__cla' ~ 'ss__' %}{{ guest_name|attr(name) }}",
        "{% set name = '__cla' ~ 'ss__' %}{{ guest_name[name] }}",
        "{{ '{0.__class__}'.format(guest_name) }}",
        "{{ range(10 ** 8)|length }}",
    ],
    ids=["attr-built-name", "item-built-name", "str-format", "huge-range"],
)
def test_what_loading_cannot_see_the_sandbox_refuses_when_rendering(tmp_path: Path, line: str) -> None:
    catalogue = TemplateCatalogue.load(catalogue_with(tmp_path, line))

    with pytest.raises(TemplateRenderError, match="hello/webchat.en.j2"):
        catalogue.render("hello", "webchat", "en", {"guest_name": "Ana"})


# -- (b) in values: rendered as text ---------------------------------------------------

MARK = "Zq7mark"


@pytest.fixture(scope="module")
def catalogue() -> TemplateCatalogue:
    return TemplateCatalogue.load()


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("channel", list(Channel))
@pytest.mark.parametrize("template", ["checkin_invitation", "free_text"])
def test_injection_in_a_guest_name_or_staff_text_renders_as_that_text(
    catalogue: TemplateCatalogue, template: str, channel: Channel, payload: str
) -> None:
    """The message is exactly the one for a harmless name and text, with the payload
    put where they were: nothing in it was evaluated; in HTML it is escaped."""
    first_name = payload.split()[0]  # the templates greet guests by their first name
    for language in ("pt-BR", "en", "es"):
        plain = catalogue.render(template, channel, language, guest_context(guest_name=f"{MARK}n", body=MARK))
        hostile = catalogue.render(template, channel, language, guest_context(guest_name=payload, body=payload))

        assert hostile.text == plain.text.replace(f"{MARK}n", first_name).replace(MARK, payload)
        if plain.subject is not None:
            assert hostile.subject == plain.subject.replace(f"{MARK}n", first_name).replace(MARK, payload)
        if plain.html is not None:
            assert hostile.html == plain.html.replace(f"{MARK}n", str(escape(first_name))).replace(
                MARK, str(escape(payload)))


async def test_injection_typed_by_guests_and_staff_is_shown_as_text_everywhere(env, worker, email, web, links, rid):
    """Through the app: a guest's name, a staff message, a chat message and check-in
    fields carrying template syntax reach e-mails, the guest's chat page and the staff
    panel as the text they are (escaped in HTML), and the check-in form keeps them as
    typed."""
    payload = "{{ ''.__class__ }}<b>{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}</b>"
    shown_payload = str(escape(payload))
    async with worker({Channel.email: email, Channel.webchat: WebchatSender()}):
        departure = await book(web, env, rid, language="en", name=payload)
        await email.wait_for(1)  # the check-in invitation
        staff = await web.post("/communications/send", json={
            "reservation_id": rid, "template": "free_text", "channel": "email", "context": {"body": payload}})
        await email.wait_for(2)
        chat_url = links.of(rid, departure)["chat_url"]
        chat_form = await web.get(chat_url)
        chatted = await post_form(web, chat_url, chat_form, {"body": payload})
        chat_page = await web.get(chat_url)
        panel = await web.get("/guest-experience", params={"reservation_id": rid}, headers={"accept": "text/html"})
        checkin_url = links.of(rid, departure)["checkin_url"]
        checkin_form = await web.get(checkin_url)
        hostile_fields = {"notes": payload, "address_line": payload[:120], "city": payload[:80]}
        kept = await post_form(web, checkin_url, checkin_form, {**GOOD_CHECKIN, **hostile_fields, "terms": ""})
        checked_in = await web.post(checkin_url, data={
            **GOOD_CHECKIN, **hostile_fields, "csrf_token": csrf(checkin_form)})
        await end(env, rid)

    invitation, staff_message = (outgoing.rendered for outgoing in email.sent[:2])
    first_name = payload.split()[0]
    assert f"{first_name}," in invitation.text and str(escape(first_name)) in (invitation.html or "")
    assert staff.status_code == 202 and staff_message.template == "free_text"
    assert payload in staff_message.text and shown_payload in (staff_message.html or "")
    assert chatted.status_code == 303
    for page in (chat_page, panel):
        assert page.status_code == 200 and shown_payload in page.text
    assert kept.status_code == 422 and str(escape(payload)) in kept.text
    assert checked_in.status_code == 303, checked_in.text
    for rendered in (invitation.text, staff_message.text, chat_page.text, panel.text, kept.text):
        assert "<class" not in rendered and "&lt;class" not in rendered  # nothing was evaluated
