"""Transport ``eventhubs``: the azure-eventhub SDK's async producer and consumer (AMQP).

Each sender is one ``EventHubProducerClient`` (``eventhubs_producer``) -- one AMQP
connection, so ``connections = devices`` is the reference design's one-sender-per-device.
Each send is one publication (batch 1: one reading per publication); ``group_sends =
true`` packs concurrent sends into batches instead, and being set in the spec it shows in
the cell id. Routes:

- ``partitioning = "id"`` (default): the client hashes the device to a partition id, so
  a device stays on one partition (its order kept) and grouped batches form per
  partition; the SDK opens one connection per partition it sends to;
- ``"key"``: partition key = the device id (the service hashes it; a batch carries one
  key, so even grouped, at ~1 event per device per minute every event is its own send:
  measured with grouping, ~500 events/s on 16 connections against ~1,700 for ``"id"``);
- ``"none"``: no routing, the service spreads batches round-robin (no per-device order).

The receiver is one ``EventHubConsumerClient`` reading every partition
(``eventhubs_consumer``); with ``checkpoint = "blob"`` it checkpoints in a blob store
(Azurite locally) only once the cold store has the events; it reads only the events
enqueued after it opened. Without ``IOTBENCH_EVENTHUB_CONNECTION_STRING`` the transport
starts the project's local endpoint; with it, the same code talks to Azure (the string
is never logged or recorded). Every SDK call is bounded by ``call_timeout_s``: the SDK can wait
forever on a peer it does not understand.

TLS: Event Hubs in Azure speaks TLS only (AMQPS on 5671, HTTPS), so ``tls = true`` is the
default here too: the local endpoint serves AMQPS and HTTPS with a local CA's certificate and
the SDK trusts that CA (``connection_verify``), so a cell pays the handshake and the record
layer as in the cloud. ``tls = false`` measures the endpoint without them (the SDK's
``UseDevelopmentEmulator`` mode); against Azure it is refused.

Limits: the local endpoint gets Standard-tier limits by default -- the throughput units
the cost model picks for the offered rate (``throughput_units = "auto"``, sized from the
``Load`` given to ``plan``; a number overrides, 0 turns it off), 5,000 connections and
1 MB per publication -- so a cell is throttled where Azure would throttle it.
``counters()`` carries the limits in effect (``limit_*``) and what the endpoint counted
(``server_publications``, ``server_events``, ``server_throttled``, ...).
ServerBusy answers are retried by the sender, each one counted (``retries``, ``busy_backoff_s``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from iotbench.model import cost
from iotbench.model.cost import AMQP_CONNECTIONS_PER_NAMESPACE, MAX_PUBLICATION_BYTES
from iotbench.model.limits import MAX_BATCH
from iotbench.transports.base import Deliver, Load, TransportDefaults, TransportError
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.eventhubs.checkpoints import checkpoint_store, storage_from_env
from iotbench.transports.eventhubs.consumer import HubReceiver
from iotbench.transports.eventhubs.producer import HubSender
from iotbench.transports.options import CONNECT_TIMEOUT_S, TransportOptions, option
from iotbench.transports.sas import ConnectionString, SasError, redact
from iotbench.transports.servers.azurite import Azurite
from iotbench.transports.servers.base import Server
from iotbench.transports.servers.eventhubs import EndpointSettings, EventHubsServer

__all__ = [
    "EventHubsOptions",
    "EventHubsTransport",
    "HubOptions",
    "CONNECTION_STRING_ENV",
    "cloud_connection",
    "kafka_options",
]

CONNECTION_STRING_ENV = "IOTBENCH_EVENTHUB_CONNECTION_STRING"
BUSY_BACKOFF_S = 4.0  # what the SDK itself waits after com.microsoft:server-busy
PARTITIONINGS = ("key", "id", "none")
AUTO = "auto"  # throughput_units: what the cost model picks for the planned load
CHECKPOINTS = ("none", "blob")

log = logging.getLogger("iotbench.eventhubs")


@dataclass(frozen=True)
class HubOptions(TransportOptions):
    """What both Event Hubs transports take: the hub, the local endpoint's limits, the consumer."""

    transport: ClassVar[str] = "eventhubs"

    partitions: int = option(
        4, "the local hub's partitions", low=1, high=1024, unit="(Event Hubs Dedicated's most; Standard takes 32)"
    )
    consumer_group: str = option("$default", "the receiver's consumer group", nonempty=True)
    throughput_units: float | str = option(
        AUTO,
        "the local endpoint's throughput units (auto: what the cost model buys for the offered rate)",
        low=0,
        high=1000,
        unit="throughput units (0: no limit)",
        also=(AUTO,),
    )
    max_message_bytes: int = option(
        MAX_PUBLICATION_BYTES,
        "the local endpoint's largest publication",
        low=0,
        high=1 << 30,
        unit="bytes (0: no limit; Standard takes 1 MB)",
    )
    call_timeout_s: float = option(
        10.0,
        "bound on every SDK call (the SDK can wait forever on a peer it does not understand)",
        low=CONNECT_TIMEOUT_S[0],
        high=CONNECT_TIMEOUT_S[1],
        unit="s",
    )
    hub: str = option("telemetry", "the event hub's name", nonempty=True)
    tls: bool = option(
        True,
        "AMQPS / HTTPS, as Azure (TLS only): the local endpoint with a local CA's certificate "
        "(false: clear text, the SDK's UseDevelopmentEmulator mode; local endpoint only)",
    )
    checkpoint: str = option(
        "none",
        "blob: the receiver checkpoints in a blob store (Azurite here) once the cold store has the events",
        choices=CHECKPOINTS,
    )


@dataclass(frozen=True)
class EventHubsOptions(HubOptions):
    partitioning: str = option(
        "id",
        "id: the client hashes the device to a partition; key: the device id is the "
        "partition key; none: round-robin (no per-device order)",
        choices=PARTITIONINGS,
    )
    group_sends: bool = option(False, "pack concurrent sends into batches (false: one publication per send)")
    max_batch_events: int = option(100, "events per grouped batch (group_sends)", low=1, high=MAX_BATCH, unit="events")
    max_connections: int = option(
        AMQP_CONNECTIONS_PER_NAMESPACE,
        "connections the local endpoint accepts",
        low=0,
        high=1_000_000,
        unit="connections (0: no limit; Standard takes 5,000)",
    )
    retries: int = option(3, "ServerBusy retries per send, each counted", low=0, high=100, unit="retries")
    busy_backoff_s: float = option(
        BUSY_BACKOFF_S, "the wait after a ServerBusy answer (the SDK's own: 4 s)", low=0, high=600, unit="s"
    )


def cloud_connection(hub: str) -> ConnectionString | None:
    """The real namespace from the environment, or None to use the local endpoint."""
    text = os.environ.get(CONNECTION_STRING_ENV, "").strip()
    if not text:
        return None
    try:
        connection = ConnectionString.parse(text)
    except SasError as exc:
        raise TransportError(f"{CONNECTION_STRING_ENV}: {exc}") from None
    return connection if connection.entity else connection.with_entity(hub)


def kafka_options(hub: str = "telemetry") -> dict[str, Any]:
    """``kafka`` transport options for the namespace's Kafka endpoint, from the same connection string.

    Event Hubs speaks Kafka on port 9093, SASL PLAIN over TLS, with the user name
    ``$ConnectionString`` and the connection string as the password. The options name
    the environment variable, never its value: the secret stays out of specs and results.
    """
    connection = cloud_connection(hub)
    if connection is None:
        raise TransportError(
            f"set {CONNECTION_STRING_ENV} to the namespace's connection string to use its Kafka endpoint"
        )
    return {
        "bootstrap": f"{connection.host.split(':')[0]}:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_username": "$ConnectionString",
        "sasl_password_env": CONNECTION_STRING_ENV,
        "topic": connection.entity or hub,
        "create_topic": False,
    }


class EventHubsTransport(TransportDefaults):
    """``EventHubsTransport(partitioning="key", throughput_units=1)``; see the module doc."""

    name: ClassVar[str] = "eventhubs"
    label: ClassVar[str] = "Event Hubs over AMQP through the azure-eventhub SDK, to a local endpoint or Azure"
    Options: ClassVar[type[HubOptions]] = EventHubsOptions
    libraries: ClassVar[tuple[str, ...]] = (
        "azure-eventhub",
        "azure-eventhub-checkpointstoreblob-aio",
        "azure-storage-blob",
    )
    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]] = [{"partitioning": "key"}, {"partitioning": "id", "tls": False}]

    def __init__(self, **options: Any) -> None:
        o = EventHubsOptions(**options)
        self.options: HubOptions = o
        self.partitioning, self.partitions, self.max_batch_events = o.partitioning, o.partitions, o.max_batch_events
        self.group_sends = o.group_sends
        self.consumer_group, self.retries, self.busy_backoff_s = o.consumer_group, o.retries, o.busy_backoff_s
        self.call_timeout_s, self.hub, self.checkpoint = o.call_timeout_s, o.hub, o.checkpoint
        self.tls = o.tls
        self._sdk_kwargs: dict[str, Any] = {}  # how the SDK reaches a local endpoint over TLS
        self._ca_file: str | None = None  # the local endpoint's CA (TLS)
        self.load: Load | None = None  # the cell's offered load, from plan()
        self._checkpoint_store: Any = None
        self._limits = (o.throughput_units, o.max_message_bytes, o.max_connections)
        self._rest: str | None = None  # the local endpoint's REST base URL (eventhubs-https)
        self._connection: ConnectionString | None = None
        self._counters: dict[str, int] = {}
        self._notes: set[str] = set()

    # -- life cycle ----------------------------------------------------------------

    def plan(self, load: Load) -> None:
        """The offered load sizes the throughput units ("auto") and the consumer's prefetch."""
        self.load = load

    def throughput_units(self) -> float:
        """The local endpoint's throughput units: "auto" is the cost model's count for the planned
        load (its minimum, 1, when nothing was planned), as one would buy them for this rate."""
        tu = self._limits[0]
        if tu != AUTO:
            return float(tu)
        load = self.load
        return float(
            cost.throughput_units(load.events_per_s, load.bytes_per_event) if load else cost.throughput_units(0, 0)
        )

    def servers(self) -> dict[str, Server]:
        """The local endpoint (Standard-tier limits by default), and Azurite for blob checkpoints;
        neither when the environment names a namespace or a storage account."""
        out: dict[str, Server] = {}
        if cloud_connection(self.hub) is None:
            _, max_bytes, max_conns = self._limits
            settings = EndpointSettings(
                self.hub,
                self.partitions,
                self.throughput_units(),
                max_bytes,
                max_conns,
                rest=self.wants_rest(),
                tls=self.tls,
            )
            out["hub"] = EventHubsServer(settings)
        elif not self.tls:
            raise TransportError(
                f"{self.name} tls = false: Event Hubs in Azure takes TLS only; remove tls = false, or unset "
                f"{CONNECTION_STRING_ENV} to measure the local endpoint without TLS"
            )
        if self.checkpoint == "blob" and storage_from_env() is None:
            out["storage"] = Azurite()
        return out

    async def start(self, endpoints: Mapping[str, Endpoint]) -> None:
        self._counters = {}
        self._sdk_kwargs, self._ca_file = {}, None
        hub = endpoints.get("hub")
        if hub is not None:
            self._connection = ConnectionString.parse(hub.extras["connection_string"])
            self._rest = hub.extras.get("rest") or None
            if hub.ca_file:  # AMQPS to a local port: the SDK's TLS to 5671 is pointed there
                from azure.eventhub import TransportType

                self._ca_file = hub.ca_file
                self._sdk_kwargs = {
                    "custom_endpoint_address": f"sb://{hub.host}:{hub.port}",
                    "transport_type": TransportType.Amqp,  # a custom endpoint alone means WebSockets
                    "connection_verify": hub.ca_file,
                }
            tu, (_, max_bytes, max_conns) = self.throughput_units(), self._limits
            # the limits in effect, in the results: a throttled cell says what throttled it
            self._counters.update(
                limit_throughput_units=int(tu) if tu == int(tu) else tu,  # type: ignore[arg-type]  # a fraction of a TU
                limit_max_connections=max_conns,
                limit_max_message_bytes=max_bytes,
            )
        else:
            self._connection = cloud_connection(self.hub)
            if self._connection is None:
                raise TransportError(
                    f"{self.name}: no local endpoint was started and {CONNECTION_STRING_ENV} is not set"
                )
        if self.checkpoint == "blob":
            storage = endpoints.get("storage")
            await self._open_checkpoint_store(storage.extras["connection_string"] if storage else storage_from_env())

    def wants_rest(self) -> bool:
        return False

    def sdk_kwargs(self) -> dict[str, Any]:
        """What the SDK's clients take beside the connection string: the local TLS endpoint and its CA."""
        return dict(self._sdk_kwargs)

    @property
    def connection(self) -> ConnectionString:
        if self._connection is None:
            raise TransportError(f"{self.name} transport used before start()")
        return self._connection

    async def open_sender(self, index: int) -> HubSender:
        """A producer client, connected (or refused) before it is handed out: its connect is bounded."""
        sender = HubSender(self, index)
        await sender.connected()
        return sender

    async def open_receiver(self, deliver: Deliver) -> HubReceiver:
        return await HubReceiver(self, deliver).open()

    async def _open_checkpoint_store(self, storage: str | None) -> None:
        if storage is None:
            raise TransportError(f'{self.name}: checkpoint = "blob" needs a storage account (none was started)')
        # a container per cell: no ownership or checkpoint of an earlier cell is picked up
        container = f"iotbench-{self.consumer_group.strip('$').lower() or 'default'}-{int(time.time() * 1000)}"
        self._checkpoint_store = await checkpoint_store(storage, container, self.call_timeout_s)

    async def stop(self) -> None:
        if self._checkpoint_store is not None:
            try:
                async with asyncio.timeout(self.call_timeout_s):
                    await self._checkpoint_store.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
            self._checkpoint_store = None

    # -- hooks for the consumer side and the results -------------------------------

    def payload(self, event: Any) -> bytes:
        """The payload a received ``EventData`` carries (the REST transport undoes base64 here)."""
        return b"".join(event.body)

    def checkpoint_kwargs(self) -> dict[str, Any]:
        return {"checkpoint_store": self._checkpoint_store} if self._checkpoint_store is not None else {}

    def note(self, message: str) -> None:
        """Log a condition once per transport (a refused connection), with secrets redacted."""
        if message not in self._notes:
            self._notes.add(message)
            log.warning("%s", redact(message))

    def count(self, name: str, n: int = 1) -> None:
        self._counters[name] = self._counters.get(name, 0) + n

    def counters(self) -> dict[str, int]:
        """What the transport saw that the runner cannot (throttled sends, retries, refusals), the local
        endpoint's limits (``limit_*``); what the endpoint counted comes from its server (``server_*``)."""
        return dict(self._counters)
