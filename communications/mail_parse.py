"""An e-mail as it arrived (bytes) read into what the service keeps of it.

Parsing never fails: a malformed message, a header in raw 8-bit bytes, an
unknown charset or broken base64 each give what could be read (a header that
cannot be read is empty, undecodable bytes become U+FFFD). The text is the
first text/plain part, else the first text/html part made text
(`communications.mail_text.html_text`), with quotes and signatures taken off.
Attachments are kept as their names and sizes only, never their contents.
A message without a Message-ID is named by the digest of its bytes, so the same
bytes delivered twice are still the same message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from communications.mail_text import html_text, reply_text

NAME_LENGTH = 200
SUBJECT_LENGTH = 300
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")


@dataclass(frozen=True)
class Attachment:
    name: str
    size: int


@dataclass(frozen=True)
class ParsedMail:
    message_id: str  # the Message-ID header, else `<sha256:…>` of the bytes
    sender: str  # the From address, lower-case; empty when there is none
    subject: str
    recipients: tuple[str, ...]  # the addresses of the recipient headers, in RECIPIENT_HEADERS order
    in_reply_to: str | None
    text: str  # the guest's own words
    attachments: tuple[Attachment, ...]
    size: int


def parse_mail(raw: bytes) -> ParsedMail:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    message_id = _header(message, "Message-ID").strip()
    if not message_id or any(c.isspace() for c in message_id):
        message_id = f"<sha256:{hashlib.sha256(raw).hexdigest()}>"
    recipients = tuple(
        address
        for name in RECIPIENT_HEADERS
        for _, address in getaddresses([_header(message, name)])
        if "@" in address
    )
    text, attachments = _contents(message)
    return ParsedMail(
        message_id=message_id,
        sender=parseaddr(_header(message, "From"))[1].strip().lower(),
        subject=" ".join(_header(message, "Subject").split())[:SUBJECT_LENGTH],
        recipients=recipients,
        in_reply_to=_header(message, "In-Reply-To").strip() or None,
        text=text,
        attachments=tuple(attachments),
        size=len(raw),
    )


def _header(message: Message, name: str) -> str:
    """A header's value as text, whatever it holds; empty when missing or unreadable. Raw
    8-bit bytes (no RFC 2047 encoding) are read as UTF-8, else Latin-1."""
    raw = _raw_header(message, name)
    if raw is None:
        return ""
    if any("\udc80" <= c <= "\udcff" for c in raw):
        return " ".join(_text(raw).split())
    try:
        value = message.get(name)
    except Exception:  # a header the policy cannot parse
        value = None
    return _text(str(value)) if value is not None else " ".join(raw.split())


def _raw_header(message: Message, name: str) -> str | None:
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _text(value: str) -> str:
    """Raw 8-bit header bytes come in as surrogates: read them as UTF-8, else Latin-1."""
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _contents(message: Message) -> tuple[str, list[Attachment]]:
    plain: str | None = None
    markup: str | None = None
    attachments: list[Attachment] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        name = _filename(part)
        disposition = part.get_content_disposition()
        kind = part.get_content_type()
        if name is not None or disposition == "attachment" or not kind.startswith("text/"):
            attachments.append(Attachment(name=name or kind, size=len(_payload(part))))
        elif kind == "text/plain" and plain is None:
            plain = _part_text(part)
        elif kind == "text/html" and markup is None:
            markup = _part_text(part)
    if plain is not None and plain.strip():
        return reply_text(plain), attachments
    return reply_text(html_text(markup or "")), attachments


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return "attachment"
    if name is None:
        return None
    return " ".join(_text(name).replace("/", "_").replace("\\", "_").split())[:NAME_LENGTH] or "attachment"


def _payload(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return b""
    return payload if isinstance(payload, bytes) else b""


def _part_text(part: Message) -> str:
    if part.get_content_charset() in (None, "us-ascii", "ascii"):  # undeclared 8-bit: UTF-8, else Latin-1
        return _clean(_text(_payload(part).decode("utf-8", "surrogateescape")))
    if isinstance(part, EmailMessage):
        try:
            content = part.get_content()
            if isinstance(content, str):
                return _clean(content)
        except Exception:  # unknown charset, broken transfer encoding
            pass
    data = _payload(part)
    charset = part.get_content_charset() or "utf-8"
    try:
        return _clean(data.decode(charset, "replace"))
    except LookupError:
        return _clean(data.decode("utf-8", "replace"))


def _clean(text: str) -> str:
    """No NUL or lone surrogates: the text goes to the database as it is."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
