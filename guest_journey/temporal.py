"""How the service reaches Temporal: the client, and the search attributes
that let staff find journeys in the Temporal Web UI (CONTRACT §4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.service import TLSConfig

from guest_journey.database import SessionFactory
from guest_journey.journey_keys import JourneyKeys
from guest_journey.payload_codec import journey_data_converter
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



def journey_search_attributes(*, reservation_id: str, hotel_id: str, stage: str, arrival: datetime) -> TypedSearchAttributes:
    """A new journey's search attributes, given with its start so that its first
    workflow task has none to upsert."""
    return TypedSearchAttributes([
        SearchAttributePair(RESERVATION_ID, reservation_id),
        SearchAttributePair(HOTEL_ID, hotel_id),
        SearchAttributePair(JOURNEY_STAGE, stage),
        SearchAttributePair(ARRIVAL_DATE, arrival),
    ])


_INDEXED_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


class TemporalSettingsError(ValueError):
    """A Temporal connection setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class TemporalConnection:
    """Where the client connects and how it proves who it is."""

    target_host: str
    namespace: str
    tls: bool | TLSConfig
    api_key: str | None


def temporal_connection(settings: Settings) -> TemporalConnection:
    """The address, namespace, TLS and API key for `Client.connect`, from the settings.

    TLS is on when `GUEST_JOURNEY_TEMPORAL_TLS` says so, and whenever a client
    certificate, a CA, a server name or an API key is given (Temporal Cloud needs
    TLS). Without certificate, CA or server name it is the system's TLS defaults."""
    api_key = settings.temporal_api_key.get_secret_value().strip() if settings.temporal_api_key else ""
    ca = _read_pem(settings.temporal_tls_ca, "GUEST_JOURNEY_TEMPORAL_TLS_CA")
    cert = _read_pem(settings.temporal_tls_cert, "GUEST_JOURNEY_TEMPORAL_TLS_CERT")
    key = _read_pem(settings.temporal_tls_key, "GUEST_JOURNEY_TEMPORAL_TLS_KEY")
    if (cert is None) != (key is None):
        raise TemporalSettingsError(
            "GUEST_JOURNEY_TEMPORAL_TLS_CERT and GUEST_JOURNEY_TEMPORAL_TLS_KEY go together: mTLS needs both"
        )
    server_name = settings.temporal_tls_server_name or None
    tls: bool | TLSConfig = settings.temporal_tls or bool(api_key)
    if ca is not None or cert is not None or server_name is not None:
        tls = TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key, domain=server_name)
    return TemporalConnection(
        target_host=settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=tls,
        api_key=api_key or None,
    )


def _read_pem(path: Path | None, setting: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise TemporalSettingsError(f"{setting}: cannot read {path}: {error.strerror or error}") from None


async def connect_temporal(
    settings: Settings, *, sessions: SessionFactory | None = None, lazy: bool = False
) -> Client:
    """The one way the API, the worker and the tools build their Temporal client.

    Its tracing interceptor carries the caller's trace into workflows and their
    activities; workers built from this client trace with it too. With the
    service's database (`sessions`) its data converter encrypts journeys' payloads
    with their data keys (`guest_journey.payload_codec`; with
    `GUEST_JOURNEY_PAYLOAD_ENCRYPTION=false` it only decodes); the API, the worker
    and `gdpr erase` pass it. Without, payloads go in clear and encrypted ones cannot
    be read: for tools that only start, describe or list."""
    connection = temporal_connection(settings)
    converter = data_converter_for(settings, sessions) if sessions is not None else pydantic_data_converter
    return await Client.connect(
        connection.target_host,
        namespace=connection.namespace,
        tls=connection.tls,
        api_key=connection.api_key,
        data_converter=converter,
        interceptors=[TracingInterceptor()],
        runtime=temporal_runtime(settings.temporal_metrics_address) if settings.temporal_metrics_address else None,
        lazy=lazy,
    )


def data_converter_for(settings: Settings, sessions: SessionFactory) -> DataConverter:
    """`pydantic_data_converter` with the journeys' payload codec, its keys in the database."""
    keys = JourneyKeys(sessions, ttl=settings.data_key_cache_seconds)
    return journey_data_converter(keys, encrypt=settings.payload_encryption)


async def register_search_attributes(client: Client, namespace: str) -> None:
    """Register the journey's search attributes (servers that were not started with them)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={name: _INDEXED_TYPES[kind] for name, kind in SEARCH_ATTRIBUTES.items()},
        )
    )


@dataclass(frozen=True)
class Poller:
    """A worker process polling the task queue (Temporal's identity: `pid@host`)."""

    identity: str
    last_access_time: datetime | None


async def workflow_pollers(client: Client, task_queue: str) -> list[Poller]:
    """The workers polling `task_queue` for workflow tasks, as Temporal's DescribeTaskQueue
    lists them. The server forgets a poller some minutes after its last poll, so a
    worker that just stopped may still be listed for a while."""
    answer = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return [
        Poller(
            identity=poller.identity,
            last_access_time=poller.last_access_time.ToDatetime(tzinfo=UTC)
            if poller.HasField("last_access_time") else None,
        )
        for poller in answer.pollers
    ]
