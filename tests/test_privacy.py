"""Masking guests' e-mail addresses and phone numbers in log lines and spans."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from guest_journey.logs import JsonFormatter
from guest_journey.privacy import mask, mask_text
from guest_journey.telemetry import PrivateSpanExporter


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to ana.souza@example.com", "to a***@example.com"),
        ("<JOAO+hotel@mail.example.com.br>: rejected", "<J***@mail.example.com.br>: rejected"),
        ("call +5521987654321 now", "call +55*******4321 now"),
        ("+55 21 98765-4321", "+55*******4321"),
        ("+4930123456", "+49****3456"),
        ("a***@example.com and +55*******4321", "a***@example.com and +55*******4321"),  # masked stays
    ],
)
def test_addresses_and_phone_numbers_are_masked(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-20T14:00:00+00:00",  # an offset is no phone number
        "reservation R1001, journey-R1001, attempt +3",
        "wamid.HBgNNTUyMTk4NzY1NDMyMRUCABEYEjQ",
        "<f2c1d0e4@guest-journey>",  # a Message-ID without a dotted domain
        "+1234567890123456789",  # longer than any E.164 number
    ],
)
def test_other_text_is_left_alone(text):
    assert mask_text(text) == text


def test_mask_reaches_into_lists_tuples_and_mappings():
    assert mask({"to": ["ana@example.com", 3], "via": ("+5521987654321",)}) == {
        "to": ["a***@example.com", 3], "via": ("+55*******4321",)}


def test_a_log_line_is_masked_in_its_message_fields_and_error():
    try:
        raise RuntimeError("550 <ana@example.com> refused")
    except RuntimeError:
        error = sys.exc_info()
    record = logging.LogRecord("tests", logging.WARNING, __file__, 1, "sent to %s", ("+5521987654321",), error)
    record.recipient = {"email": "ana@example.com"}
    line = JsonFormatter().format(record)

    entry = json.loads(line)
    assert entry["message"] == "sent to +55*******4321"
    assert entry["recipient"] == {"email": "a***@example.com"}
    assert "550 <a***@example.com> refused" in entry["error"]
    assert "ana@example.com" not in line and "+5521987654321" not in line


def test_spans_are_exported_masked():
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(PrivateSpanExporter(exported)))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("send to ana@example.com", attributes={"to": ["+5521987654321"]}) as span:
        span.record_exception(RuntimeError("550 <ana@example.com> refused"))
        span.set_status(Status(StatusCode.ERROR, "refused: ana@example.com"))

    [finished] = exported.get_finished_spans()
    assert finished.name == "send to a***@example.com"
    assert finished.attributes == {"to": ("+55*******4321",)}
    [event] = finished.events
    assert event.attributes is not None and event.attributes["exception.message"] == "550 <a***@example.com> refused"
    assert finished.status.description == "refused: a***@example.com"
    assert finished.context == span.get_span_context()
    assert "ana@example.com" not in finished.to_json() and "+5521987654321" not in finished.to_json()
