"""Reading a guest form: URL-encoded, size-limited (413), parsed once.

Guest pages post plain HTML forms; nothing else is accepted. The body is read
in chunks and refused as soon as it passes the limit, whatever
`Content-Length` claimed.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qsl

from fastapi import Request

from api.guest.errors import GuestPageError

FORM_LIMIT = 32 * 1024
MAX_FIELDS = 100
_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


class GuestForm:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)

    def get(self, name: str) -> str:
        """The first value of a field, stripped; '' when absent."""
        values = self._values.get(name)
        return values[0].strip() if values else ""

    def raw(self, name: str) -> str:
        values = self._values.get(name)
        return values[0] if values else ""

    def getlist(self, name: str) -> list[str]:
        return [value.strip() for value in self._values.get(name, [])]

    def request_id(self) -> str:
        """The id the page gave this form, so a double submit is applied once."""
        sent = self.get("request_id")
        return sent if _REQUEST_ID.match(sent) else uuid.uuid4().hex


def new_request_id() -> str:
    return uuid.uuid4().hex


async def read_form(request: Request, language: str | None = None, limit: int = FORM_LIMIT) -> GuestForm:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise GuestPageError(415, "bad_form", language=language)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise GuestPageError(413, "too_large", language=language)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise GuestPageError(413, "too_large", language=language)
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise GuestPageError(400, "bad_form", language=language) from None
    return GuestForm(pairs)


def too_long(value: str, limit: int) -> bool:
    return len(value) > limit
