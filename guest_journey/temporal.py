"""How the service reaches Temporal: the client, and the search attributes
that let staff find journeys in the Temporal Web UI (CONTRACT §4)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from guest_journey.settings import Settings
from guest_journey.telemetry import temporal_runtime

RESERVATION_ID = SearchAttributeKey.for_keyword("ReservationId")
HOTEL_ID = SearchAttributeKey.for_keyword("HotelId")
JOURNEY_STAGE = SearchAttributeKey.for_keyword("JourneyStage")
ARRIVAL_DATE = SearchAttributeKey.for_datetime("ArrivalDate")

# name -> type, as `temporal server start-dev --search-attribute NAME=TYPE` takes them
SEARCH_ATTRIBUTES: dict[str, str] = {
    RESERVATION_ID.name: "Keyword",
    HOTEL_ID.name: "Keyword",
    JOURNEY_STAGE.name: "Keyword",
    ARRIVAL_DATE.name: "Datetime",
}

_INDEXED_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


async def connect_temporal(settings: Settings, *, lazy: bool = False) -> Client:
    """The one way the API, the worker and the tools build their Temporal client.

    Its tracing interceptor carries the caller's trace into workflows and their
    activities; workers built from this client trace with it too."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=[TracingInterceptor()],
        runtime=temporal_runtime(settings.temporal_metrics_address) if settings.temporal_metrics_address else None,
        lazy=lazy,
    )


async def register_search_attributes(client: Client, namespace: str) -> None:
    """Register the journey's search attributes (servers that were not started with them)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={name: _INDEXED_TYPES[kind] for name, kind in SEARCH_ATTRIBUTES.items()},
        )
    )
