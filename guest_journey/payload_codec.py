"""The payload codec that keeps guest data out of Temporal's history in clear.

A journey's payloads (workflow input, signals, updates, queries, activity
arguments and results, failure details: everything the data converter encodes
for the workflow `journey-…`) are encrypted with AES-GCM under the journey's own
data key (`guest_journey.journey_keys`). The codec learns the journey from
temporalio's serialization context (`WithSerializationContext`): the client and
the worker give it the workflow id of the payloads they encode. Payloads of
other workflows (the KPI schedule's) and payloads encoded without a workflow
(the codec endpoint's `/codec/encode`) pass through unencrypted, and so does
everything with `GUEST_JOURNEY_PAYLOAD_ENCRYPTION=false` (the test suite's
default, `tests/conftest.py`: its workers share one client without the codec).

An encrypted payload is `metadata.encoding = binary/encrypted-journey`,
`metadata.encryption-key-id = <key id>`, data `nonce(12) || AES-GCM(original
payload serialized)`, the key id as associated data. Decoding leaves a payload
without that encoding as it is, so histories recorded before the codec replay.

A failure's message and stack trace (an SMTP refusal may quote the guest's
address) are not payloads: with encryption on, the failure converter moves
them into the failure's encoded attributes (`DefaultFailureConverterWithEncodedAttributes`),
a payload the codec encrypts like the others; failures recorded without them
still decode.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Sequence
from typing import Self

from cryptography.exceptions import InvalidTag
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from guest_journey.journey_keys import JourneyKeyErased, JourneyKeys
from guest_journey.journeys import is_journey_workflow_id

ENCODING = b"binary/encrypted-journey"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class UndecodablePayload(ValueError):
    """An encrypted payload whose key is right but whose bytes are not (tampered, truncated)."""


class JourneyPayloadCodec(PayloadCodec, WithSerializationContext):
    """Encrypts the payloads of journey workflows with the journey's key; see the module."""

    def __init__(self, keys: JourneyKeys, workflow_id: str | None = None, *, encrypt: bool = True) -> None:
        self.keys = keys
        self.workflow_id = workflow_id
        self.encrypt = encrypt

    def with_context(self, context: SerializationContext) -> Self:
        workflow_id = None
        if self.encrypt and isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
            workflow_id = context.workflow_id
        journey = workflow_id if workflow_id is not None and is_journey_workflow_id(workflow_id) else None
        return type(self)(self.keys, journey, encrypt=self.encrypt)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self.workflow_id is None:
            return list(payloads)
        key = await self.keys.for_encoding(self.workflow_id)
        associated = key.key_id.encode()
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = key.cipher.encrypt(nonce, payload.SerializeToString(), associated)
            encoded.append(Payload(metadata={"encoding": ENCODING, KEY_ID: associated}, data=nonce + sealed))
        return encoded

    async def journeys_of(self, payloads: Sequence[Payload]) -> set[str]:
        """The workflow ids of the journeys whose keys encrypted these payloads, erased ones
        too; raises `UnknownJourneyKey`."""
        journeys = set()
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                continue
            try:
                key = await self.keys.for_decoding(payload.metadata.get(KEY_ID, b"").decode())
            except JourneyKeyErased as erased:
                journeys.add(erased.workflow_id)
            else:
                journeys.add(key.workflow_id)
        return journeys

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """The original payloads; raises `JourneyKeyErased` for an erased journey's payload."""
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            key_id = payload.metadata.get(KEY_ID, b"")
            key = await self.keys.for_decoding(key_id.decode())
            try:
                plain = key.cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id)
            except (InvalidTag, ValueError) as error:  # altered bytes; a nonce cut short
                raise UndecodablePayload(f"a payload of journey {key.workflow_id!r} does not decrypt") from error
            original = Payload()
            original.ParseFromString(plain)
            decoded.append(original)
        return decoded


@dataclasses.dataclass(frozen=True)
class _JourneyDataConverter(DataConverter):
    """`DataConverter` whose `with_context` copies itself instead of building anew: the
    SDK asks for a converter per command and activation once a codec takes the context,
    and `DataConverter.with_context` builds a new payload converter every time."""

    def with_context(self, context: SerializationContext) -> Self:
        changed = {}
        for name in ("payload_converter", "payload_codec", "failure_converter", "external_storage"):
            part = getattr(self, name)
            if isinstance(part, WithSerializationContext):
                contextual = part.with_context(context)
                if contextual is not part:
                    changed[name] = contextual
        if not changed:
            return self
        clone = copy.copy(self)
        for name, part in changed.items():
            object.__setattr__(clone, name, part)
        return clone


def journey_data_converter(keys: JourneyKeys, *, encrypt: bool = True) -> DataConverter:
    """`pydantic_data_converter` with the journey codec: what clients and workers use.
    With `encrypt=False` nothing new is encrypted, and what was still decodes."""
    return _JourneyDataConverter(
        payload_converter_class=pydantic_data_converter.payload_converter_class,
        payload_codec=JourneyPayloadCodec(keys, encrypt=encrypt),
        failure_converter_class=(
            DefaultFailureConverterWithEncodedAttributes if encrypt else pydantic_data_converter.failure_converter_class
        ),
    )
