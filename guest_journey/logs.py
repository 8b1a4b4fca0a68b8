"""Logging for every process: at a terminal, readable lines; otherwise one JSON object per line, with the fields a
log line was given (`extra=`, e.g. `reservation_id`) and the current trace and
span ids, never a guest's address in clear: e-mail addresses and phone numbers
anywhere in the line are masked (`guest_journey.privacy`)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

from guest_journey.privacy import mask_text

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = trace.format_trace_id(span.trace_id)
            entry["span_id"] = trace.format_span_id(span.span_id)
        entry.update({key: value for key, value in record.__dict__.items() if key not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return mask_text(json.dumps(entry, default=str))


class ConsoleFormatter(JsonFormatter):
    """For a person at a terminal: `time level logger: message key=value ...`, masked the same way."""

    def format(self, record: logging.LogRecord) -> str:
        return console_line(json.loads(super().format(record)))


def console_line(entry: dict[str, Any]) -> str:
    """A JSON log line's fields as `ConsoleFormatter` writes them (`guest-journey dev` shows
    its processes' JSON lines this way at a terminal)."""
    entry = dict(entry)
    moment = datetime.fromisoformat(entry.pop("time")).strftime("%H:%M:%S")
    level, name, message = entry.pop("level"), entry.pop("logger"), entry.pop("message")
    error = entry.pop("error", None)
    entry.pop("color_message", None)
    fields = " ".join(f"{key}={value}" for key, value in entry.items())
    line = f"{moment} {level:<7} {name}: {message}" + (f"  {fields}" if fields else "")
    return line + (f"\n{error}" if error else "")


def configure_logging(level: str | int = logging.INFO, stream: TextIO | None = None) -> None:
    """Log to stderr from `level` up (`GUEST_JOURNEY_LOG_LEVEL`): JSON lines, or readable
    lines when stderr is a terminal."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ConsoleFormatter() if stream.isatty() else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.getLogger("temporalio").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
