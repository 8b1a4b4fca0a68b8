"""The codec endpoint: staff see a journey's decoded payloads in the Temporal UI.

Temporal's codec-server convention (docs.temporal.io, "Codec Server"): the UI
posts `{"payloads": [...]}` (payloads in protobuf JSON: base64 `metadata`
values and `data`) to `{endpoint}/decode` and `{endpoint}/encode`, with the
namespace in the `X-Namespace` header, and shows what comes back. The UI runs
in the browser, at `GUEST_JOURNEY_TEMPORAL_UI_URL`: `api.app` lets that
origin (and no other) call these two routes across origins.

Decoding needs an `ops` (or `admin`) key. A key limited to some hotels decodes
only payloads of its hotels' journeys: a payload names its journey's key, the
key its journey, the read model the journey's hotel; another hotel's journey
(or one the read model does not know) is 404, as if it did not exist. A
payload of an erased journey is answered 410, naming the journey. Encoding has no workflow to encrypt for (the convention
sends none), so it answers the payloads as they came: the codec decodes them
as they are.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.api.common.v1 import Payloads

from api.access import Principal
from api.deps import SessionDep, SettingsDep, TemporalClientDep, require_role
from api.error_responses import ROLE_ERRORS, errors
from guest_journey.journey_keys import JourneyKeyErased, UnknownJourneyKey
from guest_journey.journeys import reservation_id_of
from guest_journey.payload_codec import JourneyPayloadCodec, UndecodablePayload
from guest_journey.read_model import hotels_of
from services.errors import DomainError, InvalidRequest, NotFound

CODEC_PREFIX = "/codec"

router = APIRouter(prefix=CODEC_PREFIX, tags=["codec"], responses=ROLE_ERRORS)


class JourneyErased(DomainError):
    status_code = 410


OpsDep = Annotated[Principal, Depends(require_role("ops"))]


async def journey_codec(client: TemporalClientDep, settings: SettingsDep,
                  namespace: Annotated[str | None, Header(alias="X-Namespace")] = None) -> JourneyPayloadCodec:
    if namespace is not None and namespace != settings.temporal_namespace:
        raise NotFound(f"this codec serves the namespace {settings.temporal_namespace!r}, not {namespace!r}")
    codec = client.data_converter.payload_codec
    assert isinstance(codec, JourneyPayloadCodec), "the API's client is built with the journey codec"
    return codec


CodecDep = Annotated[JourneyPayloadCodec, Depends(journey_codec)]
# Base64, standard or URL-safe, padded or not: what protobuf JSON reads as bytes (a subset of it).
BASE64 = r"^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$"
Base64 = Annotated[str, Field(pattern=BASE64)]


class PayloadIn(BaseModel):
    """A Temporal payload in protobuf JSON."""

    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, Base64] = Field(default_factory=dict, description="values in base64 (`encoding`, ...)")
    data: Base64 = Field(default="", description="in base64")


class PayloadsIn(BaseModel):
    """`{"payloads": [...]}`, as the Temporal UI posts it: checked here before protobuf reads it, so that
    the schema says what is taken (protobuf alone would also read `[]`, `null` or `{"data": "!"}`)."""

    model_config = ConfigDict(extra="forbid")

    payloads: list[PayloadIn]


CODEC_ERRORS = errors(404, 410, 413, 422, why={
    404: "X-Namespace names another namespace than the service's; for a key limited to hotels, "
         "a payload of another hotel's journey",
    410: "a payload of a journey whose data key an erase destroyed: `detail` names the journey",
    413: "the request body is larger than 4 MiB",
    422: "the body is not `{\"payloads\": [...]}` in protobuf JSON, or a payload does not decrypt",
})


# The key is checked before the namespace (the route's dependencies run first): no answer about
# namespaces to a caller without one.
@router.post("/decode", dependencies=[Depends(require_role("ops"))], responses=CODEC_ERRORS,
             response_description='`{"payloads": [...]}`, decoded')
async def decode_payloads(
    body: PayloadsIn, request: Request, codec: CodecDep, principal: OpsDep, session: SessionDep,
) -> Response:
    payloads = _payloads(await request.body())
    try:
        if principal.scoped:
            await _check_hotels(principal, session, await codec.journeys_of(payloads.payloads))
        decoded = await codec.decode(payloads.payloads)
    except JourneyKeyErased as error:
        raise JourneyErased(str(error)) from None
    except (UnknownJourneyKey, UndecodablePayload) as error:
        raise InvalidRequest(str(error)) from None
    return _answer(Payloads(payloads=decoded))


@router.post("/encode", dependencies=[Depends(require_role("ops"))], responses=CODEC_ERRORS,
             response_description='`{"payloads": [...]}`, as given (no journey to encrypt for)')
async def encode_payloads(body: PayloadsIn, request: Request, codec: CodecDep) -> Response:
    payloads = _payloads(await request.body())
    return _answer(Payloads(payloads=await codec.encode(payloads.payloads)))


async def _check_hotels(principal: Principal, session: AsyncSession, journeys: set[str]) -> None:
    reservation_ids = sorted(reservation_id_of(workflow_id) for workflow_id in journeys)
    hotels = await hotels_of(session=session, reservation_ids=reservation_ids)
    for reservation_id in reservation_ids:
        if not principal.may_see(hotels.get(reservation_id)):
            raise NotFound("no journey")


def _payloads(body: bytes) -> Payloads:
    try:
        return json_format.Parse(body, Payloads())
    except (json_format.ParseError, UnicodeDecodeError) as error:
        raise InvalidRequest(f'the body is not {{"payloads": [...]}} in protobuf JSON: {error}') from None


def _answer(payloads: Payloads) -> Response:
    return Response(content=json_format.MessageToJson(payloads), media_type="application/json")
