"""The errors of the message templates: a template or the catalogue is wrong, or
a message cannot be rendered."""

from __future__ import annotations


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
