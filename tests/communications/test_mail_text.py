"""What is kept of a guest's e-mail: their own words (no quotes, attributions or
signatures, in pt, en and es mail programs' forms), HTML as text, attachments as
names and sizes; and parsing that never fails."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from communications.mail_parse import parse_mail
from communications.mail_text import html_text, reply_text

REPLIES = {
    "gmail en": "Arriving at 10pm.\n\nOn Mon, Dec 7, 2026 at 10:00 AM Hotel Mar <stay@hotel.example> wrote:\n"
                "> Hello Ana,\n> your check-in is ready.\n",
    "gmail pt folded": "Chego às 22h.\n\nEm seg., 7 de dez. de 2026 às 10:00, Hotel Mar <stay@hotel.example>\n"
                       "escreveu:\n> Olá, Ana!\n",
    "gmail es": "Llego a las 22h.\n\nEl lun, 7 dic 2026 a las 10:00, Hotel Mar (<stay@hotel.example>) escribió:\n"
                "> ¡Hola, Ana!\n",
    "outlook pt": "Chego às 22h.\n\n________________________________\nDe: Hotel Mar <stay@hotel.example>\n"
                  "Enviado: segunda-feira, 7 de dezembro de 2026 10:00\nPara: Ana\nAssunto: Sua reserva\n\nOlá, Ana!\n",
    "outlook en block": "Arriving at 10pm.\n\nFrom: Hotel Mar <stay@hotel.example>\nSent: Monday, December 7, 2026\n"
                        "To: Ana\nSubject: Your stay\n\nHello Ana\n",
    "signature": "Chego às 22h.\n\n-- \nAna Souza\nDiretora, Empresa X\n",
    "phone": "Llego a las 22h.\n\nEnviado desde mi iPhone\n\n> ¡Hola!\n",
    "original message": "Arriving at 10pm.\n\n-----Original Message-----\nFrom: Hotel Mar\nHello\n",
}


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_quotes_attributions_and_signatures_are_taken_off(name: str) -> None:
    assert reply_text(REPLIES[name]) in {"Arriving at 10pm.", "Chego às 22h.", "Llego a las 22h."}


def test_inline_answers_keep_the_guests_lines_and_drop_the_quoted_ones() -> None:
    text = "> Que horas você chega?\n22h.\n> Precisa de berço?\nSim, por favor.\n"
    assert reply_text(text) == "22h.\nSim, por favor."


def test_a_reply_that_is_only_quotes_keeps_its_text() -> None:
    assert reply_text("> Olá, Ana!\n> Tudo certo?\n") == "> Olá, Ana!\n> Tudo certo?"


def test_a_line_that_merely_starts_like_an_attribution_is_kept() -> None:
    assert reply_text("On Monday we arrive.\nFrom: São Paulo, by car.\n") == "On Monday we arrive.\nFrom: São Paulo, by car."


def test_html_becomes_the_text_a_reader_sees_without_scripts_styles_or_quotes() -> None:
    markup = ("<html><head><title>x</title><style>p{color:red}</style></head><body>"
              "<p>Quero o <b>upgrade</b>&nbsp;&amp; café</p><script>alert(1)</script><div>Obrigada</div>"
              "<blockquote>Olá, Ana!</blockquote><!-- a comment --><p onclick='x()'>&lt;b&gt;</p></body></html>")
    assert html_text(markup) == "Quero o upgrade & café\nObrigada\n\n<b>"


def test_an_unclosed_script_drops_everything_after_it() -> None:
    assert html_text("Oi<script>alert(1)") == "Oi"


def test_attachments_are_kept_as_names_and_sizes_and_the_text_is_the_reply() -> None:
    message = EmailMessage()
    message["From"] = "Ana <Ana@Example.com>"
    message["To"] = "reply+ABCdef@hotel.example"
    message["Subject"] = "=?utf-8?q?Re=3A_Reserva_at=C3=A9_s=C3=A1bado?="
    message.set_content("Segue o documento.\n\nEm seg., Hotel escreveu:\n> Olá\n")
    message.add_attachment(b"%PDF" + b"x" * 996, maintype="application", subtype="pdf", filename="rg ../../x.pdf")
    message.add_attachment(b"GIF89a", maintype="image", subtype="gif")

    mail = parse_mail(message.as_bytes())

    assert mail.text == "Segue o documento."
    assert mail.sender == "ana@example.com" and mail.recipients == ("reply+ABCdef@hotel.example",)
    assert mail.subject == "Re: Reserva até sábado"
    assert [(a.name, a.size) for a in mail.attachments] == [("rg .._.._x.pdf", 1000), ("image/gif", 6)]


@pytest.mark.parametrize("raw", [
    b"",
    b"\x00\xff\xfe garbage without headers",
    b"Subject: =?utf-8?b?////?=\r\nContent-Type: multipart/alternative\r\n\r\nno boundary at all",
    b"From: \"unclosed <a@b\r\nTo: ,,,@,\r\nContent-Type: text/plain; charset=x-no-such\r\n\r\n\xe9t\xe9",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!! not base64 ====",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment; filename*=x''%ff\r\n\r\n",
])
def test_malformed_mail_parses_into_something_storable(raw: bytes) -> None:
    mail = parse_mail(raw)
    assert mail.message_id.startswith("<") and "\x00" not in mail.text
    mail.text.encode("utf-8")  # no lone surrogates: it goes to the database as it is
    mail.subject.encode("utf-8")
