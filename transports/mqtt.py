"""MQTT (3.1.1 or 5, QoS 0 or 1) through this package's own asyncio client (``mqtt_client.py``).

A device publishes to ``devices/{key}/telemetry`` (a gateway's batch: ``key`` is
``gateway-N``); the receiver subscribes to ``devices/+/telemetry``, or joins the
shared subscription ``$share/iotbench/devices/+/telemetry``. Every sender is one
MQTT connection. ``send`` returns on PUBACK at QoS 1; at QoS 0 once the PUBLISH is
queued for the socket (written at the end of the event loop's pass; while the socket's
buffer is full, ``send`` waits). A connection that breaks fails every send waiting on it,
and the receiver's ``failure()`` says why.

The broker is mosquitto (Debian) or amqtt (PyPI, MQTT 3.1.1 only), started in the
cell's folder -- or an external one named by ``url`` (see ``endpoints.py``).

``bridge = "eventhubs"`` runs the bridged path instead of reading the broker: a bridge process
(``bridges.mqtt_eventhubs``, a server of the cell) forwards the device topics to the local Event
Hubs endpoint, and the receiver is the ``eventhubs`` transport's consumer (its options' defaults:
TLS, Standard-tier limits for the planned load). The bridge's CPU counts as a server's; its hop
shows in the end-to-end latency.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from iotbench.transports import mqtt_packets as packets
from iotbench.transports.base import Deliver, Load, Receiver, ReceiverDefaults, TransportDefaults, TransportError
from iotbench.transports.endpoints import Endpoint, external_endpoint
from iotbench.transports.eventhubs.transport import EventHubsTransport
from iotbench.transports.mqtt_client import KEEPALIVE_S, MqttConnection
from iotbench.transports.options import CONNECT_TIMEOUT_S, TransportOptions, option
from iotbench.transports.servers.amqtt import Amqtt
from iotbench.transports.servers.base import Server
from iotbench.transports.servers.bridge import Bridge, Upstream
from iotbench.transports.servers.mosquitto import Mosquitto
from iotbench.transports.tls import client_context

__all__ = ["MqttOptions", "MqttTransport"]

TOPIC = "devices/{key}/telemetry"
SUBSCRIPTION = "devices/+/telemetry"
SHARED_GROUP = "iotbench"
SCHEMES = {"mqtt": 1883, "mqtts": 8883}  # url schemes and their default ports
_client_ids = itertools.count()


@dataclass(frozen=True)
class MqttOptions(TransportOptions):
    transport: ClassVar[str] = "mqtt"

    qos: int = option(1, "0: at most once; 1: at least once (send returns on PUBACK)", choices=(0, 1))
    protocol: str = option("3.1.1", "MQTT version", choices=("3.1.1", "5"))
    broker: str = option(
        "mosquitto", "the broker started here (amqtt: pure Python, MQTT 3.1.1 only)", choices=("mosquitto", "amqtt")
    )
    subscription: str = option(
        "wildcard",
        "the receiver's subscription: devices/+/telemetry, or shared ($share/iotbench/...)",
        choices=("wildcard", "shared"),
    )
    tls: bool = option(False, "MQTT over TLS (mosquitto with a local CA's certificate; mqtts:// for a url)")
    websockets: bool = option(False, "MQTT over WebSockets (amqtt: mosquitto 2.0.11's ws listener fails here)")
    url: str = option(
        "", "mqtt://[user@]host:port of an external broker instead of starting one (password: IOTBENCH_MQTT_PASSWORD)"
    )
    bridge: str = option(
        "none",
        "eventhubs: a bridge process forwards the broker's messages to the local Event Hubs endpoint, "
        "read by the Event Hubs consumer (the full bridged path, the bridge's cost measured)",
        choices=("none", "eventhubs"),
    )
    keepalive_s: int = option(
        KEEPALIVE_S, "MQTT keep-alive: a PINGREQ after this long without a packet sent", low=1, high=65535, unit="s"
    )
    connect_timeout_s: float = option(
        10.0, "bound on each connect and subscribe", low=CONNECT_TIMEOUT_S[0], high=CONNECT_TIMEOUT_S[1], unit="s"
    )

    def check(self) -> None:
        if self.url:
            external_endpoint(self.url, "mqtt", SCHEMES)  # its shape, and no password in it (specs are saved)


class _Sender:
    def __init__(self, connection: MqttConnection, qos: int) -> None:
        self._conn = connection
        self._qos = qos
        self._version5 = connection.version5

    async def send(self, key: str, payload: bytes) -> None:
        conn = self._conn
        if not conn.open:
            raise conn.failure or TransportError(f"connection to {conn.endpoint} closed")
        topic = TOPIC.format(key=key).encode()
        if self._qos:
            future = conn.loop.create_future()
            conn.publish(topic, payload, future)
            await future
            return
        conn.write(packets.publish(0, 0, topic, payload, self._version5))
        if conn.paused is not None:  # the socket's buffer is full: wait for it to drain, as a blocking write would
            await asyncio.shield(conn.paused)
            if not conn.open:
                raise conn.failure or TransportError(f"connection to {conn.endpoint} closed")

    async def close(self) -> None:
        await self._conn.close()


class _Receiver(ReceiverDefaults):
    def __init__(self, connection: MqttConnection) -> None:
        self._conn = connection

    def failure(self) -> str | None:
        conn = self._conn
        if conn.error is None and conn.failure is not None:
            return str(conn.failure)
        return conn.error

    async def close(self) -> None:
        await self._conn.close()


class MqttTransport(TransportDefaults):
    """``MqttTransport(qos=1, protocol="3.1.1", broker="mosquitto")``."""

    name: ClassVar[str] = "mqtt"
    label: ClassVar[str] = "MQTT 3.1.1 or 5, QoS 0 or 1, own asyncio client, to mosquitto, amqtt or an external broker"
    Options: ClassVar[type[MqttOptions]] = MqttOptions
    libraries: ClassVar[tuple[str, ...]] = ("amqtt", "websockets", "azure-eventhub")
    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]] = [
        {"qos": 1},
        {"qos": 0, "protocol": "5", "subscription": "shared"},
        {"qos": 1, "protocol": "5"},
        {"qos": 1, "broker": "amqtt"},
        {"qos": 1, "tls": True},
        {"qos": 1, "broker": "amqtt", "websockets": True},
        {"qos": 1, "bridge": "eventhubs"},  # in order per device through the bridge and the hub's partitions
    ]

    def __init__(self, **options: Any) -> None:
        o = self.options = MqttOptions(**options)
        self.qos, self.protocol, self.broker, self.subscription = o.qos, o.protocol, o.broker, o.subscription
        self.tls, self.websockets, self.connect_timeout_s, url = o.tls, o.websockets, float(o.connect_timeout_s), o.url
        self.keepalive_s = o.keepalive_s
        self.ssl_context: ssl.SSLContext | None = None
        self.endpoint: Endpoint | None = None
        self._url = url
        self._connections: list[MqttConnection] = []
        self.hub = EventHubsTransport(call_timeout_s=o.connect_timeout_s) if o.bridge == "eventhubs" else None

    def _check(self, external: bool) -> None:
        """What depends on the endpoint, which the environment may name (``IOTBENCH_MQTT_URL``):
        checked when the cell starts, so it fails the cell and the matrix goes on."""
        if self.websockets and not external and self.broker != "amqtt":
            raise TransportError(
                "websockets: mosquitto 2.0.11's websockets listener does not start here "
                '("Unable to start any listening sockets"); use broker="amqtt"'
            )
        if (
            self.broker == "amqtt"
            and not external
            and (self.protocol == "5" or self.subscription == "shared" or self.tls)
        ):
            raise TransportError(
                'amqtt here speaks MQTT 3.1.1 without TLS or shared subscriptions; use broker="mosquitto"'
            )
        if self.hub is not None and (external or self.websockets):
            raise TransportError(
                'bridge = "eventhubs" runs its bridge against a broker started here over TCP; '
                "remove url (or IOTBENCH_MQTT_URL) and websockets"
            )

    def servers(self) -> dict[str, Server]:
        """The broker to start here: none when the spec or ``IOTBENCH_MQTT_URL`` names one."""
        external = external_endpoint(self._url, "mqtt", SCHEMES) is not None
        self._check(external)
        if external:
            return {}
        broker: Server = Amqtt(websockets=self.websockets) if self.broker == "amqtt" else Mosquitto(tls=self.tls)
        if self.hub is None:
            return {"broker": broker}
        # the bridged path: broker, then the hub (and what its consumer needs), then the bridge between them
        hub_servers = dict(self.hub.servers())
        if "hub" not in hub_servers:
            raise TransportError(
                'bridge = "eventhubs" forwards to the local endpoint only; unset the connection string'
            )
        upstream_broker, upstream_hub = Upstream(broker), Upstream(hub_servers.pop("hub"))
        subscription = self._subscription()
        bridge = Bridge(upstream_broker, upstream_hub, subscription, self.connect_timeout_s)
        return {"broker": upstream_broker, "hub": upstream_hub, **hub_servers, "bridge": bridge}

    def _subscription(self) -> str:
        return f"$share/{SHARED_GROUP}/{SUBSCRIPTION}" if self.subscription == "shared" else SUBSCRIPTION

    def plan(self, load: Load) -> None:
        if self.hub is not None:  # the local endpoint's throughput units follow the offered load
            self.hub.plan(load)

    def counters(self) -> dict[str, int]:
        return self.hub.counters() if self.hub is not None else {}

    async def start(self, endpoints: Mapping[str, Endpoint]) -> None:
        self.endpoint = endpoints.get("broker") or external_endpoint(self._url, "mqtt", SCHEMES)
        if self.endpoint is None:
            raise TransportError("mqtt: no broker was started and none is named (url option or IOTBENCH_MQTT_URL)")
        if self.endpoint.ca_file:
            self.ssl_context = client_context(self.endpoint.ca_file)  # a started broker's local CA
        elif self.tls or self.endpoint.scheme == "mqtts":
            self.ssl_context = ssl.create_default_context()  # an external broker: the system's CAs
        if self.hub is not None:
            await self.hub.start(endpoints)

    async def _connect(self, role: str, deliver: Deliver | None = None) -> MqttConnection:
        if self.endpoint is None:
            raise TransportError("mqtt transport used before start()")
        conn = MqttConnection(self.endpoint, self.protocol == "5", self.connect_timeout_s, deliver, self.keepalive_s)
        await conn.open_session(f"iotbench-{role}-{next(_client_ids)}", self.ssl_context, self.websockets)
        self._connections.append(conn)
        return conn

    async def open_sender(self, index: int) -> _Sender:
        return _Sender(await self._connect(f"sender{index}"), self.qos)

    async def open_receiver(self, deliver: Deliver) -> Receiver:
        if self.hub is not None:  # the bridged path ends in Event Hubs: its consumer reads it
            return await self.hub.open_receiver(deliver)
        conn = await self._connect("receiver", deliver)
        await conn.subscribe(self._subscription(), self.qos)
        return _Receiver(conn)

    async def stop(self) -> None:
        for conn in self._connections:
            await conn.close()
        self._connections.clear()
        if self.hub is not None:
            await self.hub.stop()
