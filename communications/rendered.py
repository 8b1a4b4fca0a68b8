"""A message rendered from a template, ready for a channel."""

from __future__ import annotations

from pydantic import BaseModel


class RenderedMessage(BaseModel):
    template: str
    language: str
    subject: str | None = None
    text: str
    html: str | None = None
