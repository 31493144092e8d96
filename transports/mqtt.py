"""MQTT (3.1.1 or 5, QoS 0 or 1) through paho-mqtt, driven by the asyncio loop itself.

paho's own network thread (``loop_start``) halves throughput (FACTS.md): here each
client's socket is watched by the event loop (``add_reader`` / ``add_writer``), so
paho's callbacks -- PUBACKs, received messages -- run in the loop's thread and can
resolve futures and call ``deliver`` directly.

A device publishes to ``devices/{key}/telemetry`` (a gateway's batch: ``key`` is
``gateway-N``); the receiver subscribes to ``devices/+/telemetry``, or joins the
shared subscription ``$share/iotbench/devices/+/telemetry``. Every sender is one
MQTT connection. ``send`` returns on PUBACK at QoS 1, and once the PUBLISH is
written to the socket at QoS 0.

The broker is mosquitto (Debian) or amqtt (PyPI, MQTT 3.1.1 only), started in the
cell's folder -- or an external one named by ``url`` (see ``endpoints.py``).
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from iotbench.transports.base import Deliver, ReceiverDefaults, TransportDefaults, TransportError
from iotbench.transports.endpoints import Endpoint, external_endpoint
from iotbench.transports.options import CONNECT_TIMEOUT_S, TransportOptions, option
from iotbench.transports.servers.amqtt import Amqtt
from iotbench.transports.servers.base import Server
from iotbench.transports.servers.mosquitto import Mosquitto
from iotbench.transports.tls import client_context

__all__ = ["MqttOptions", "MqttTransport"]

TOPIC = "devices/{key}/telemetry"
SUBSCRIPTION = "devices/+/telemetry"
SHARED_GROUP = "iotbench"
SCHEMES = {"mqtt": 1883, "mqtts": 8883}  # url schemes and their default ports
READS_PER_WAKE = 256  # paho reads one packet per loop_read(); take what is buffered in one wake
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
    connect_timeout_s: float = option(
        10.0, "bound on each connect and subscribe", low=CONNECT_TIMEOUT_S[0], high=CONNECT_TIMEOUT_S[1], unit="s"
    )

    def check(self) -> None:
        if self.url:
            external_endpoint(self.url, "mqtt", SCHEMES)  # its shape, and no password in it (specs are saved)


class _Connection:
    """One paho client whose socket the running event loop watches."""

    def __init__(self, transport: MqttTransport, role: str) -> None:
        endpoint = transport.endpoint
        assert endpoint is not None
        self.endpoint, self._host, self._port = str(endpoint), endpoint.host, endpoint.port
        self.timeout = transport.connect_timeout_s
        self.tls = transport.ssl_context is not None
        protocol = paho.MQTTv5 if transport.protocol == "5" else paho.MQTTv311
        client_id = f"iotbench-{role}-{next(_client_ids)}"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            transport="websockets" if transport.websockets else "tcp",
        )
        # paho's own in-flight limit rescans every queued message on each PUBACK (quadratic
        # in the backlog): it is off; the publisher's max_inflight bounds what is in flight
        self.client.max_inflight_messages_set(0)
        self.client.max_queued_messages_set(0)
        self.client.connect_timeout = self.timeout
        if endpoint.username is not None:
            self.client.username_pw_set(endpoint.username, endpoint.password)
        if transport.ssl_context is not None:
            self.client.tls_set_context(transport.ssl_context)
        self.loop = asyncio.get_running_loop()
        self.waiting: dict[int, asyncio.Future[None]] = {}  # mid -> future (PUBACK / written / SUBACK)
        self.received = 0
        self.failure: TransportError | None = None
        self._connected: asyncio.Future[Any] = self.loop.create_future()
        self._sock: Any = None
        self._misc: asyncio.TimerHandle | None = None
        c = self.client
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_ack
        c.on_subscribe = lambda _c, _u, mid, _codes, _p: self._on_ack(_c, _u, mid, None, None)

    async def connect(self) -> None:
        try:
            # the TCP connect blocks (bounded by connect_timeout): keep it off the loop
            await self.loop.run_in_executor(None, lambda: self.client.connect(self._host, self._port, keepalive=30))
        except (OSError, ValueError) as exc:
            raise TransportError(f"cannot connect to {self.endpoint}: {exc}") from None
        self._watch()
        try:
            async with asyncio.timeout(self.timeout):
                await self._connected
        except TimeoutError:
            await self.close()
            raise TransportError(
                f"no CONNACK from {self.endpoint} within {self.timeout:g} s (is it an MQTT broker?)"
            ) from None
        except TransportError:
            await self.close()
            raise

    def _watch(self) -> None:
        c, loop = self.client, self.loop
        self._sock = c.socket()
        loop.add_reader(self._sock, self._read)
        c.on_socket_register_write = lambda _c, _u, sock: loop.add_writer(sock, self._write)
        c.on_socket_unregister_write = lambda _c, _u, sock: loop.remove_writer(sock)  # type: ignore[assignment]
        c.on_socket_close = lambda _c, _u, sock: self._unwatch()
        if c.want_write():
            loop.add_writer(self._sock, self._write)
        self._misc = loop.call_later(1.0, self._keepalive)

    def _unwatch(self) -> None:
        if self._sock is not None:
            self.loop.remove_reader(self._sock)
            self.loop.remove_writer(self._sock)
            self._sock = None
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None

    def _read(self) -> None:
        sock = self._sock
        tls = isinstance(sock, ssl.SSLSocket) or (self.tls and hasattr(sock, "pending"))
        for _ in range(READS_PER_WAKE):
            before = self.received + len(self.waiting)
            if self.client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS or self._sock is None:
                return
            # nothing new was in the buffer -- unless TLS holds decrypted bytes the socket
            # will not signal again
            if self.received + len(self.waiting) == before and not (tls and sock.pending()):
                return

    def _write(self) -> None:
        self.client.loop_write()

    def _keepalive(self) -> None:
        self.client.loop_misc()
        if self._sock is not None:
            self._misc = self.loop.call_later(1.0, self._keepalive)

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if self._connected.done():
            return
        if reason.is_failure:
            self._connected.set_exception(TransportError(f"{self.endpoint} refused the connection: {reason}"))
        else:
            self._connected.set_result(None)

    def _on_ack(self, _c: Any, _u: Any, mid: int, reason: Any, _props: Any) -> None:
        future = self.waiting.pop(mid, None)
        if future is None or future.done():
            return
        if reason is not None and getattr(reason, "is_failure", False):
            future.set_exception(TransportError(f"broker refused the message: {reason}"))
        else:
            future.set_result(None)

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.failure = TransportError(f"connection to {self.endpoint} lost: {reason}")
        if not self._connected.done():
            self._connected.set_exception(self.failure)
        waiting, self.waiting = self.waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(self.failure)

    def expect(self, mid: int) -> asyncio.Future[None]:
        future = self.loop.create_future()
        self.waiting[mid] = future
        return future

    async def close(self) -> None:
        if self._sock is not None and self.failure is None:
            self.client.disconnect()
            self.client.loop_write()  # the DISCONNECT goes out before the socket closes
        self._unwatch()
        sock = self.client.socket()
        if sock is not None:
            sock.close()


class _Sender:
    def __init__(self, connection: _Connection, qos: int) -> None:
        self._conn = connection
        self._qos = qos

    async def send(self, key: str, payload: bytes) -> None:
        conn = self._conn
        if conn.failure is not None:
            raise conn.failure
        info = conn.client.publish(TOPIC.format(key=key), payload, qos=self._qos)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise TransportError(f"publish failed: {paho.error_string(info.rc)}")
        if not info.is_published():
            await conn.expect(info.mid)

    async def close(self) -> None:
        await self._conn.close()


class _Receiver(ReceiverDefaults):
    def __init__(self, connection: _Connection, deliver: Deliver) -> None:
        self._conn = connection
        self._error: str | None = None

        def on_message(_c: Any, _u: Any, message: Any) -> None:
            connection.received += 1
            if self._error is not None:
                return  # the consumer broke: the cell has failed, nothing more is delivered
            try:
                deliver(message.payload)
            except Exception as exc:  # noqa: BLE001 - paho would log it and go on: the cell must fail instead
                self._error = f"deliver raised {type(exc).__name__}: {exc}"

        connection.client.on_message = on_message

    def failure(self) -> str | None:
        if self._error is None and self._conn.failure is not None:
            return str(self._conn.failure)
        return self._error

    async def subscribe(self, topic: str, qos: int) -> None:
        conn = self._conn
        rc, mid = conn.client.subscribe(topic, qos=qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise TransportError(f"subscribe failed: {paho.error_string(rc)}")
        try:
            async with asyncio.timeout(conn.timeout):
                await conn.expect(mid)  # type: ignore[arg-type]  # paho returns a mid when rc is success
        except TimeoutError:
            raise TransportError(f"no SUBACK from {conn.endpoint} within {conn.timeout:g} s") from None

    async def close(self) -> None:
        await self._conn.close()


class MqttTransport(TransportDefaults):
    """``MqttTransport(qos=1, protocol="3.1.1", broker="mosquitto")``."""

    name: ClassVar[str] = "mqtt"
    label: ClassVar[str] = "MQTT 3.1.1 or 5, QoS 0 or 1, through paho-mqtt, to mosquitto, amqtt or an external broker"
    Options: ClassVar[type[MqttOptions]] = MqttOptions
    libraries: ClassVar[tuple[str, ...]] = ("paho-mqtt", "amqtt")
    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]] = [
        {"qos": 1},
        {"qos": 0, "protocol": "5", "subscription": "shared"},
        {"qos": 1, "protocol": "5"},
        {"qos": 1, "broker": "amqtt"},
        {"qos": 1, "tls": True},
        {"qos": 1, "broker": "amqtt", "websockets": True},
    ]

    def __init__(self, **options: Any) -> None:
        o = self.options = MqttOptions(**options)
        self.qos, self.protocol, self.broker, self.subscription = o.qos, o.protocol, o.broker, o.subscription
        self.tls, self.websockets, self.connect_timeout_s, url = o.tls, o.websockets, float(o.connect_timeout_s), o.url
        self.ssl_context: ssl.SSLContext | None = None
        self.endpoint: Endpoint | None = None
        self._url = url
        self._connections: list[_Connection] = []

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

    def servers(self) -> dict[str, Server]:
        """The broker to start here: none when the spec or ``IOTBENCH_MQTT_URL`` names one."""
        external = external_endpoint(self._url, "mqtt", SCHEMES) is not None
        self._check(external)
        if external:
            return {}
        if self.broker == "amqtt":
            return {"broker": Amqtt(websockets=self.websockets)}
        return {"broker": Mosquitto(tls=self.tls)}

    async def start(self, endpoints: Mapping[str, Endpoint]) -> None:
        self.endpoint = endpoints.get("broker") or external_endpoint(self._url, "mqtt", SCHEMES)
        if self.endpoint is None:
            raise TransportError("mqtt: no broker was started and none is named (url option or IOTBENCH_MQTT_URL)")
        if self.endpoint.ca_file:
            self.ssl_context = client_context(self.endpoint.ca_file)  # a started broker's local CA
        elif self.tls or self.endpoint.scheme == "mqtts":
            self.ssl_context = ssl.create_default_context()  # an external broker: the system's CAs

    async def _connect(self, role: str) -> _Connection:
        if self.endpoint is None:
            raise TransportError("mqtt transport used before start()")
        conn = _Connection(self, role)
        await conn.connect()
        self._connections.append(conn)
        return conn

    async def open_sender(self, index: int) -> _Sender:
        return _Sender(await self._connect(f"sender{index}"), self.qos)

    async def open_receiver(self, deliver: Deliver) -> _Receiver:
        receiver = _Receiver(await self._connect("receiver"), deliver)
        shared = f"$share/{SHARED_GROUP}/{SUBSCRIPTION}" if self.subscription == "shared" else SUBSCRIPTION
        await receiver.subscribe(shared, self.qos)
        return receiver

    async def stop(self) -> None:
        for conn in self._connections:
            await conn.close()
        self._connections.clear()
