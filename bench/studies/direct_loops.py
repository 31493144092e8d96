"""Minimal direct client loops: what each protocol's client library does alone, the harness's yardstick.

Each loop sends the same 56-byte ``msgpack-array`` payload the harness sends at batch 1, as fast as
its library allows, to a server started by the project's own launcher (the way a cell starts it),
while a receiver in a second process counts what arrives. ``measure(name, workdir)`` reports
delivered (and acknowledged) events/s over a fixed window after a warm-up; the harness-overhead
benchmark (``tests/benchmarks/test_harness_overhead.py``) sets the harness cell beside it.

- ``mqtt-qos0``, ``mqtt-qos1``: paho on a select loop of its own (never ``loop_start``: its thread
  halves throughput, FACTS.md), QoS 1 with up to 1,000 PUBACKs outstanding; a paho subscriber counts.
- ``amqp-engine``: python-qpid-proton's engine on a select loop, within link credit and 1,000 unsettled;
  ``amqp-reactor``: proton's own reactor (``Container`` + ``MessagingHandler``), the same window. The
  amqp transport writes its own client on the engine, so both library loops are measured and the
  faster is its yardstick. A receiver on the engine counts.
- ``kafka``: aiokafka's producer with the kafka transport's settings (acks=1, linger 5 ms, 256 KB
  batches), up to 1,000 acknowledgements outstanding; an assigned aiokafka consumer counts.
- ``http-pool``, ``http-one``: aiohttp with 64 keep-alive connections, or one, each a request at a time,
  the http transport's request (path, query, headers); the gateway's ``/$stream`` reader counts. The
  http transport writes its own client on httptools: aiohttp is the best library loop here (FACTS.md).

Every wait is bounded (connect, ready, acknowledgements, the receiver's drain); a loop that cannot
finish raises ``DirectLoopError`` saying what it waited for. Client libraries are imported inside
their loop, so a machine without one extra loses only that loop.

Run: ``python -m iotbench.studies.direct_loops [LOOP ...]`` (prints a Markdown table).
"""

from __future__ import annotations

import asyncio
import bisect
import multiprocessing
import os
import queue
import select
import socket
import struct
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

from iotbench.codecs import get_codec
from iotbench.studies.samples import sample_readings
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.servers.base import Server
from iotbench.transports.servers.ingest import IngestGateway
from iotbench.transports.servers.mosquitto import Mosquitto
from iotbench.transports.servers.rabbitmq import RabbitMQServer
from iotbench.transports.servers.tansu import Tansu

__all__ = ["LOOPS", "DirectLoop", "DirectLoopError", "LoopResult", "Timeline", "measure", "sample_payload"]

CONNECT_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 60.0  # the receiver's process: spawn, import, connect, subscribe
ACK_TIMEOUT_S = 10.0  # after the window: what is still unacknowledged gets this long
QUIET_S = 2.0  # the receiver stops once it has everything, or nothing came for this long
POLL_S = 0.05  # the longest a loop blocks without checking its clock
WINDOW = 1000  # unacknowledged sends, as the harness's max_inflight (Kafka: 10,000 was no faster)
HTTP_POOL = 64  # FACTS.md: aiohttp's best keep-alive figure was at 64 concurrent requests
MQTT_TOPIC = "devices/{key}/telemetry"  # the mqtt transport's topics
AMQP_ADDRESS = "/queue/direct"
KAFKA_TOPIC, KAFKA_PARTITIONS = "telemetry", 4  # the kafka transport's defaults
HUB = "telemetry"

Ready = Callable[[], None]
Stop = Callable[[int], bool]


class DirectLoopError(RuntimeError):
    """A direct loop could not run or finish within its bounds."""


class Timeline:
    """A counter's value (events, CPU seconds) over time on the monotonic clock (one clock for every
    process on Linux)."""

    STEP_S = 0.02

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._next = 0.0

    def sample(self, count: float) -> None:
        """Record ``count`` if ``STEP_S`` has passed since the last record: cheap enough per loop pass."""
        now = time.monotonic()
        if now >= self._next:
            self.samples.append((now, count))
            self._next = now + self.STEP_S

    def close(self, count: float) -> None:
        self.samples.append((time.monotonic(), count))

    def at(self, t: float) -> float:
        """The count at ``t``, interpolated between the samples around it."""
        samples = self.samples
        if not samples:
            return 0.0
        i = bisect.bisect_right(samples, (t, float("inf")))
        if i == 0:
            return 0.0  # before the first sample: every counter here starts at 0
        if i == len(samples):
            return float(samples[-1][1])
        (t0, c0), (t1, c1) = samples[i - 1], samples[i]
        return c0 + (c1 - c0) * (t - t0) / (t1 - t0)

    def rate(self, start: float, end: float) -> float:
        """Counted per second between ``start`` and ``end``."""
        return (self.at(end) - self.at(start)) / (end - start)


@dataclass(frozen=True)
class DirectLoop:
    """A sender run in this process and a receiver run in a second one, against ``server()``."""

    label: str
    server: Callable[[], Server]
    send: Callable[[Endpoint, bytes, list[str], float, Timeline], tuple[int, int]]  # -> (sent, acknowledged)
    receive: Callable[[Endpoint, Ready, Stop, Timeline], int]  # -> delivered
    prepare: Callable[[Endpoint], None] | None = None


@dataclass(frozen=True)
class LoopResult:
    name: str
    label: str
    sent: int
    acked: int  # acknowledged by the server (MQTT QoS 0: written to the socket)
    delivered: int  # counted by the receiver
    acked_eps: float  # over the measured window
    delivered_eps: float
    duration_s: float
    sender_cpu_us: float  # CPU per event sent: this process, connect included
    receiver_cpu_us: float  # CPU per event delivered: the receiver's process, after it was ready
    window: tuple[float, float]  # the measured window on the monotonic clock

    @property
    def complete(self) -> bool:
        """Everything sent was acknowledged and delivered."""
        return self.sent == self.acked == self.delivered


def sample_payload() -> tuple[bytes, list[str]]:
    """The harness's batch-1 payload (a ``msgpack-array`` reading, 56 bytes) and 965 device ids."""
    readings = sample_readings(1000)
    return get_codec("msgpack-array").encode(readings[0]), sorted({r.device_id for r in readings})


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """uvloop where installed: the fastest loop an asyncio client gets here."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _bounded(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise DirectLoopError(f"no {what} within the bound")


# ---- MQTT: paho driven by its own select loop -----------------------------------------------


def _mqtt_connect(endpoint: Endpoint, role: str) -> Any:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"direct-{role}-{os.getpid()}")
    client.max_inflight_messages_set(0)  # the loop keeps its own window: paho's rescans its queue per PUBACK
    client.max_queued_messages_set(0)
    client.connect_timeout = CONNECT_TIMEOUT_S
    answers: list[Any] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
    client.connect(endpoint.host, endpoint.port, keepalive=60)
    _mqtt_pump_until(client, lambda: bool(answers), "CONNACK")
    if answers[0].is_failure:
        raise DirectLoopError(f"{endpoint} refused the connection: {answers[0]}")
    return client


def _mqtt_pump(client: Any, timeout: float, progress: Callable[[], int] | None = None) -> None:
    """One select on the socket, then read and write. paho reads one packet per ``loop_read`` unless
    messages are in flight: with ``progress`` (a count that grows per packet) it reads on while it grows."""
    sock = client.socket()
    if sock is None:
        raise DirectLoopError("the broker closed the connection")
    readable, writable, _ = select.select([sock], [sock] if client.want_write() else [], [], timeout)
    if readable:
        for _ in range(256 if progress else 1):
            before = progress() if progress else 0
            if client.loop_read() != 0:
                raise DirectLoopError("the connection to the broker broke")
            if not progress or progress() == before:
                break
    if writable or client.want_write():
        client.loop_write()


def _mqtt_pump_until(client: Any, done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not done():
        _bounded(deadline, what)
        _mqtt_pump(client, POLL_S)


def _mqtt_send(
    qos: int, endpoint: Endpoint, payload: bytes, keys: list[str], until: float, timeline: Timeline
) -> tuple[int, int]:
    client = _mqtt_connect(endpoint, "sender")
    acked = 0

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1

    if qos:
        client.on_publish = on_publish
    topics = [MQTT_TOPIC.format(key=k) for k in keys]
    publish, n, sent = client.publish, len(topics), 0
    while time.monotonic() < until:
        # QoS 1: up to WINDOW unacknowledged; QoS 0: as long as the socket takes them (paho queues the rest)
        room = WINDOW - (sent - acked) if qos else (0 if client.want_write() else 100)
        for _ in range(room):
            publish(topics[sent % n], payload, qos)
            sent += 1
        _mqtt_pump(client, POLL_S if room <= 0 else 0.0)
        timeline.sample(acked if qos else sent)
    deadline = time.monotonic() + ACK_TIMEOUT_S
    while (acked < sent) if qos else client.want_write():
        _bounded(deadline, f"PUBACK for {sent - acked} of {sent} messages")
        _mqtt_pump(client, POLL_S)
    timeline.close(acked if qos else sent)
    client.disconnect()
    return sent, acked if qos else sent


def _mqtt_receive(qos: int, endpoint: Endpoint, ready: Ready, stop: Stop, timeline: Timeline) -> int:
    client = _mqtt_connect(endpoint, "receiver")
    count, subscribed = 0, []

    def on_message(*_: Any) -> None:
        nonlocal count
        count += 1

    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.append(True)
    client.subscribe(MQTT_TOPIC.format(key="+"), qos)
    _mqtt_pump_until(client, lambda: bool(subscribed), "SUBACK")
    ready()
    while not stop(count):
        _mqtt_pump(client, POLL_S, lambda: count)
        timeline.sample(count)
    timeline.close(count)
    client.disconnect()
    return count


# ---- AMQP 1.0: python-qpid-proton, as an engine on a select loop, or its own reactor ---------------


def _amqp_body(payload: bytes) -> bytes:
    """The bare data section the amqp transport sends (proton's Message adds two empty sections: 69 B, not 64)."""
    return b"\x00\x53\x75\xb0" + struct.pack(">I", len(payload)) + payload


class _ProtonPeer:
    """One socket, one proton engine with a connection and a session, pumped with select."""

    def __init__(self, endpoint: Endpoint, role: str, collect: bool) -> None:
        from proton import Collector, Connection, Transport

        self.engine = Transport()
        sasl = self.engine.sasl()
        sasl.allowed_mechs("PLAIN")
        sasl.allow_insecure_mechs = True  # loopback
        self.conn = Connection()
        self.conn.container, self.conn.hostname = f"direct-{role}-{os.getpid()}", endpoint.host
        self.conn.user, self.conn.password = endpoint.username or "guest", endpoint.password or "guest"
        self.engine.bind(self.conn)
        self.collector = Collector() if collect else None
        if self.collector is not None:
            self.conn.collect(self.collector)
        self.conn.open()
        self.session = self.conn.session()
        self.session.open()
        self.sock = socket.create_connection((endpoint.host, endpoint.port), timeout=CONNECT_TIMEOUT_S)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._unread = b""

    def pump(self, timeout: float, take: Callable[[], None] | None = None) -> None:
        self._write()
        wanted = [self.sock] if self.engine.pending() > 0 else []
        readable, _, _ = select.select([self.sock], wanted, [], 0.0 if self._unread else timeout)
        if readable:
            try:
                data = self.sock.recv(1 << 18)
            except BlockingIOError:
                data = None
            if data == b"":
                raise DirectLoopError("the broker closed the connection")
            self._unread += data or b""
        self._push(take)
        self._write()

    def _push(self, take: Callable[[], None] | None) -> None:
        """Feed the engine; a receiver's engine takes no more until its deliveries are read (``take``)."""
        engine, data = self.engine, self._unread
        while data:
            room = engine.capacity()
            if room == 0 and take is not None:
                take()
                room = engine.capacity()
            if room < 0:
                raise DirectLoopError(f"the AMQP engine closed: {engine.condition}")
            if room == 0:
                break
            engine.push(data[:room])
            data = data[room:]
        self._unread = data

    def _write(self) -> None:
        engine = self.engine
        while (pending := engine.pending()) > 0:
            try:
                engine.pop(self.sock.send(engine.peek(pending) or b""))
            except BlockingIOError:
                return

    def open_link(self, link: Any) -> None:
        from proton import Endpoint as ProtonEndpoint

        link.open()
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not link.state & ProtonEndpoint.REMOTE_ACTIVE:
            _bounded(deadline, "AMQP attach")
            condition = link.remote_condition or self.conn.remote_condition or self.engine.condition
            if condition is not None:
                raise DirectLoopError(f"the broker refused the link: {condition}")
            self.pump(POLL_S)


def _amqp_engine_send(
    endpoint: Endpoint, payload: bytes, keys: list[str], until: float, timeline: Timeline
) -> tuple[int, int]:
    from cproton import (
        PN_ACCEPTED,
        PN_DELIVERY,
        isnull,
        pn_collector_peek,
        pn_collector_pop,
        pn_delivery_remote_state,
        pn_delivery_settle,
        pn_delivery_updated,
        pn_event_delivery,
        pn_event_type,
    )
    from proton import Link

    peer = _ProtonPeer(endpoint, "sender", collect=True)
    link = peer.session.sender("direct-sender")
    link.target.address = AMQP_ADDRESS
    link.snd_settle_mode = Link.SND_UNSETTLED
    peer.open_link(link)
    body, events = _amqp_body(payload), peer.collector._impl  # type: ignore[union-attr]
    delivery, send, advance = link.delivery, link.send, link.advance
    sent = acked = refused = 0

    def settle() -> None:  # the C events straight, as the amqp transport reads them (no wrappers)
        nonlocal acked, refused
        while not isnull(raw := pn_collector_peek(events)):
            if pn_event_type(raw) == PN_DELIVERY:
                d = pn_event_delivery(raw)
                if pn_delivery_updated(d):
                    if pn_delivery_remote_state(d) == PN_ACCEPTED:
                        acked += 1
                    else:
                        refused += 1
                    pn_delivery_settle(d)
            pn_collector_pop(events)

    while time.monotonic() < until:
        room = min(link.credit, WINDOW - (sent - acked - refused))
        for _ in range(room):
            delivery(str(sent))
            send(body)
            advance()
            sent += 1
        peer.pump(POLL_S if room <= 0 else 0.0)
        settle()
        timeline.sample(acked)
    deadline = time.monotonic() + ACK_TIMEOUT_S
    while acked + refused < sent:
        _bounded(deadline, f"disposition for {sent - acked - refused} of {sent} messages")
        peer.pump(POLL_S)
        settle()
    timeline.close(acked)
    peer.sock.close()
    return sent, acked


def _amqp_reactor_send(
    endpoint: Endpoint, payload: bytes, keys: list[str], until: float, timeline: Timeline
) -> tuple[int, int]:
    from proton.handlers import MessagingHandler
    from proton.reactor import Container

    class Sender(MessagingHandler):
        def __init__(self) -> None:
            super().__init__(prefetch=0, auto_accept=False, auto_settle=True)
            self.sent = self.acked = self.refused = 0
            self.error: str | None = None
            self.body, self.container, self.sender = _amqp_body(payload), None, cast(Any, None)

        def on_start(self, event: Any) -> None:
            self.container = container = event.container
            url = (
                f"amqp://{endpoint.username or 'guest'}:{endpoint.password or 'guest'}@{endpoint.host}:{endpoint.port}"
            )
            conn = container.connect(url, allowed_mechs="PLAIN", allow_insecure_mechs=True, reconnect=False)
            self.sender = container.create_sender(conn, AMQP_ADDRESS)
            container.schedule(max(0.0, until - time.monotonic()), _Timer(self._fill))
            container.schedule(max(0.0, until - time.monotonic()) + ACK_TIMEOUT_S, _Timer(self._give_up))

        def on_sendable(self, event: Any) -> None:
            self._fill()

        def on_accepted(self, event: Any) -> None:
            self.acked += 1
            timeline.sample(self.acked)
            self._fill()

        def on_rejected(self, event: Any) -> None:
            self.refused += 1
            self._fill()

        on_released = on_rejected

        def on_transport_error(self, event: Any) -> None:
            self.error = f"transport error: {event.transport.condition}"
            event.container.stop()

        def _fill(self) -> None:
            sender = self.sender
            if time.monotonic() >= until:
                if self.acked + self.refused >= self.sent and self.container is not None:
                    self.container.stop()
                return
            for _ in range(min(sender.credit, WINDOW - (self.sent - self.acked - self.refused))):
                sender.delivery(str(self.sent))
                sender.stream(self.body)
                sender.advance()
                self.sent += 1

        def _give_up(self) -> None:
            self.error = f"no disposition for {self.sent - self.acked - self.refused} of {self.sent} messages"
            self.container.stop()  # type: ignore[attr-defined]

    handler = Sender()
    Container(handler).run()
    timeline.close(handler.acked)
    if handler.error:
        raise DirectLoopError(handler.error)
    return handler.sent, handler.acked


class _Timer:
    def __init__(self, call: Callable[[], None]) -> None:
        self.call = call

    def on_timer_task(self, event: Any) -> None:
        self.call()


def _amqp_receive(endpoint: Endpoint, ready: Ready, stop: Stop, timeline: Timeline) -> int:
    from proton import Delivery

    credit = WINDOW
    peer = _ProtonPeer(endpoint, "receiver", collect=False)
    link = peer.session.receiver("direct-receiver")
    link.source.address = AMQP_ADDRESS
    link.flow(credit)
    peer.open_link(link)
    ready()
    count = 0

    def take() -> None:
        nonlocal count
        while (d := link.current) is not None and d.readable and not d.partial:
            link.recv(d.pending)
            link.advance()
            d.update(Delivery.ACCEPTED)
            d.settle()
            count += 1
        if link.credit < credit // 2:  # top the credit up in chunks, as the transport does
            link.flow(credit - link.credit)

    while not stop(count):
        peer.pump(POLL_S, take)
        take()
        timeline.sample(count)
    timeline.close(count)
    peer.sock.close()
    return count


# ---- Kafka: aiokafka ---------------------------------------------------------------------------------


def _kafka_prepare(endpoint: Endpoint) -> None:
    async def create() -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=str(endpoint))
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await admin.start()
            try:
                await admin.create_topics([NewTopic(KAFKA_TOPIC, KAFKA_PARTITIONS, 1)])
            finally:
                await admin.close()

    _run(create())


async def _kafka_send_async(
    endpoint: Endpoint, payload: bytes, keys: list[str], until: float, timeline: Timeline
) -> tuple[int, int]:
    from aiokafka import AIOKafkaProducer

    # the kafka transport's producer: acks=1, linger 5 ms, 256 KB batches
    producer = AIOKafkaProducer(
        bootstrap_servers=str(endpoint), acks=1, linger_ms=5, max_batch_size=262_144, client_id="direct-sender"
    )
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        await producer.start()
    try:
        encoded = [k.encode() for k in keys]
        pending: deque[asyncio.Future[Any]] = deque()
        n, sent, acked, send = len(encoded), 0, 0, producer.send
        while time.monotonic() < until:
            pending.append(await send(KAFKA_TOPIC, payload, key=encoded[sent % n]))
            sent += 1
            if len(pending) >= WINDOW:
                await pending.popleft()
                acked += 1
                timeline.sample(acked)
        async with asyncio.timeout(ACK_TIMEOUT_S):
            while pending:
                await pending.popleft()
                acked += 1
        timeline.close(acked)
        return sent, acked
    finally:
        async with asyncio.timeout(ACK_TIMEOUT_S):
            await producer.stop()


async def _kafka_receive_async(endpoint: Endpoint, ready: Ready, stop: Stop, timeline: Timeline) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=str(endpoint), group_id=None, enable_auto_commit=False, fetch_max_wait_ms=5
    )
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        await consumer.start()
        partitions = [TopicPartition(KAFKA_TOPIC, p) for p in range(KAFKA_PARTITIONS)]
        consumer.assign(partitions)  # a group join takes 5-23 s on Tansu (FACTS.md)
        await consumer.seek_to_beginning(*partitions)
    ready()
    count = 0
    try:
        while not stop(count):
            batches = await consumer.getmany(timeout_ms=int(POLL_S * 1000), max_records=10_000)
            count += sum(len(records) for records in batches.values())
            timeline.sample(count)
        timeline.close(count)
        return count
    finally:
        async with asyncio.timeout(ACK_TIMEOUT_S):
            await consumer.stop()


# ---- HTTP/1.1 keep-alive: aiohttp -----------------------------------------------------------------


async def _http_send_async(
    connections: int, endpoint: Endpoint, payload: bytes, keys: list[str], until: float, timeline: Timeline
) -> tuple[int, int]:
    import secrets
    from urllib.parse import quote

    import aiohttp

    from iotbench.transports.http.rest_client import QUERY, SINGLE_CONTENT_TYPE, RestEndpoint

    base = f"http://{endpoint.host}:{endpoint.port}"
    # the http transport's request: its path, query, Content-Type and SAS Authorization header
    headers = RestEndpoint(base, None, HUB, "send", secrets.token_urlsafe(32)).headers(SINGLE_CONTENT_TYPE)
    paths = [f"/{HUB}/publishers/{quote(k, safe='')}/messages{QUERY}" for k in keys]
    counts = [0, 0]  # sent, acknowledged (201)
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=ACK_TIMEOUT_S, sock_connect=CONNECT_TIMEOUT_S)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:

        async def requests(first: int) -> None:
            i, post = first, session.post
            while time.monotonic() < until:
                counts[0] += 1
                async with post(paths[i % len(paths)], data=payload, headers=headers) as response:
                    await response.read()
                    if response.status != 201:
                        raise DirectLoopError(f"the gateway answered {response.status}")
                counts[1] += 1
                timeline.sample(counts[1])
                i += connections

        async with asyncio.timeout(max(0.0, until - time.monotonic()) + ACK_TIMEOUT_S):
            await asyncio.gather(*(requests(i) for i in range(connections)))
    timeline.close(counts[1])
    return counts[0], counts[1]


async def _http_receive_async(endpoint: Endpoint, ready: Ready, stop: Stop, timeline: Timeline) -> int:
    import aiohttp

    from iotbench.transports.event_stream import STREAM_PATH, decode_frames

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            response = await session.get(f"http://{endpoint.host}:{endpoint.port}{STREAM_PATH}")
        ready()
        buffer, count = bytearray(), 0
        while not stop(count):
            try:
                async with asyncio.timeout(POLL_S):
                    chunk = await response.content.readany()
            except TimeoutError:
                continue
            if not chunk:
                raise DirectLoopError("the gateway ended the event stream")
            buffer += chunk
            count += len(decode_frames(buffer))
            timeline.sample(count)
        timeline.close(count)
        response.release()
        return count


def _sync(async_fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    return lambda *args: _run(async_fn(*args))


LOOPS: dict[str, DirectLoop] = {
    "amqp-engine": DirectLoop(
        "AMQP 1.0 unsettled -> RabbitMQ: proton engine on a select loop, window 1,000",
        RabbitMQServer,
        _amqp_engine_send,
        _amqp_receive,
    ),
    "amqp-reactor": DirectLoop(
        "AMQP 1.0 unsettled -> RabbitMQ: proton's reactor (Container), window 1,000",
        RabbitMQServer,
        _amqp_reactor_send,
        _amqp_receive,
    ),
    "http-one": DirectLoop(
        "HTTP/1.1 keep-alive -> uvicorn: aiohttp, one connection",
        partial(IngestGateway, "uvicorn"),
        _sync(partial(_http_send_async, 1)),
        _sync(_http_receive_async),
    ),
    "http-pool": DirectLoop(
        f"HTTP/1.1 keep-alive -> uvicorn: aiohttp, {HTTP_POOL} connections",
        partial(IngestGateway, "uvicorn"),
        _sync(partial(_http_send_async, HTTP_POOL)),
        _sync(_http_receive_async),
    ),
    "kafka": DirectLoop(
        f"Kafka acks=1 -> Tansu: aiokafka producer, {WINDOW:,} acks outstanding",
        Tansu,
        _sync(_kafka_send_async),
        _sync(_kafka_receive_async),
        _kafka_prepare,
    ),
    "mqtt-qos0": DirectLoop(
        "MQTT QoS 0 -> mosquitto: paho on its own select loop",
        Mosquitto,
        partial(_mqtt_send, 0),
        partial(_mqtt_receive, 0),
    ),
    "mqtt-qos1": DirectLoop(
        f"MQTT QoS 1 -> mosquitto: paho on its own select loop, window {WINDOW:,}",
        Mosquitto,
        partial(_mqtt_send, 1),
        partial(_mqtt_receive, 1),
    ),
}


# ---- running one: the server, the receiver's process, the sender here ---------------------------------


def _receiver_main(name: str, endpoint: Endpoint, ready: Any, expected: Any, results: Any, bound_s: float) -> None:
    """The receiver's process: count until it has ``expected`` (set once the sender is done) or goes quiet."""
    hard_stop = time.monotonic() + bound_s
    last, changed = -1, time.monotonic()

    def stop(count: int) -> bool:
        nonlocal last, changed
        now = time.monotonic()
        if count != last:
            last, changed = count, now
        want = expected.value
        return now > hard_stop or (want >= 0 and (count >= want or now - changed > QUIET_S))

    timeline, cpu = Timeline(), [0.0]

    def on_ready() -> None:
        cpu[0] = time.process_time()
        ready.set()

    try:
        count = LOOPS[name].receive(endpoint, on_ready, stop, timeline)
        results.put(("ok", count, timeline.samples, time.process_time() - cpu[0]))
    except Exception as exc:  # noqa: BLE001 - the parent reports it with the loop's name
        results.put(("error", f"{type(exc).__name__}: {exc}", [], 0.0))


def _outcome(child: Any, results: Any, bound_s: float) -> tuple[str, Any, list[tuple[float, float]], float]:
    """The receiver's report; ("error", why, []) when it died without one or did not answer in time."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        try:
            return results.get(timeout=0.5)
        except queue.Empty:
            if not child.is_alive() and results.empty():
                return "error", f"its process ended (exit code {child.exitcode}) without a report", [], 0.0
    return "error", f"no report within {bound_s:g} s", [], 0.0


def measure(
    name: str, workdir: Path, *, duration_s: float = 10.0, warmup_s: float = 2.0, payload: bytes | None = None
) -> LoopResult:
    """Run loop ``name`` for ``warmup_s + duration_s`` against a fresh server under ``workdir``.

    >>> measure("mqtt-qos1", Path("/tmp/x"), duration_s=5).delivered_eps  # doctest: +SKIP
    21153.0
    """
    loop = LOOPS[name]
    sample, keys = sample_payload()
    payload = sample if payload is None else payload
    server = loop.server()
    endpoint = server.start(Path(workdir).resolve() / name)
    try:
        if loop.prepare is not None:
            loop.prepare(endpoint)
        spawn = multiprocessing.get_context("spawn")  # a clean interpreter: no event loop or thread inherited
        ready, expected, results = spawn.Event(), spawn.RawValue("q", -1), spawn.Queue()
        bound_s = READY_TIMEOUT_S + warmup_s + duration_s + 2 * ACK_TIMEOUT_S + QUIET_S
        child = spawn.Process(
            target=_receiver_main, args=(name, endpoint, ready, expected, results, bound_s), daemon=True
        )
        child.start()
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not ready.wait(0.2):
                if not child.is_alive() or not results.empty():
                    raise DirectLoopError(f"{name}: the receiver failed: {_outcome(child, results, 1.0)[1]}")
                _bounded(deadline, f"{name}: receiver ready")
            start = time.monotonic()
            begin, end = start + warmup_s, start + warmup_s + duration_s
            sent_timeline = Timeline()
            sent_timeline.close(0)
            cpu = time.process_time()
            sent, acked = loop.send(endpoint, payload, keys, end, sent_timeline)
            sender_cpu_s = time.process_time() - cpu
            expected.value = sent
            status, delivered, samples, receiver_cpu_s = _outcome(child, results, bound_s)
            if status != "ok":
                raise DirectLoopError(f"{name}: the receiver failed: {delivered}")
        finally:
            child.join(timeout=ACK_TIMEOUT_S)
            if child.is_alive():
                child.terminate()
                child.join(timeout=ACK_TIMEOUT_S)
    finally:
        server.stop()
    delivered_timeline = Timeline()
    delivered_timeline.samples = samples
    return LoopResult(
        name,
        loop.label,
        sent,
        acked,
        delivered,
        round(sent_timeline.rate(begin, end), 1),
        round(delivered_timeline.rate(begin, end), 1),
        duration_s,
        round(sender_cpu_s / max(sent, 1) * 1e6, 2),
        round(receiver_cpu_s / max(delivered, 1) * 1e6, 2),
        (begin, end),
    )


def main(argv: list[str]) -> None:
    names = argv or sorted(LOOPS)
    folder = Path(tempfile.mkdtemp(prefix="iotbench-direct-"))
    print(f"load average {os.getloadavg()[0]:.2f}; payload {len(sample_payload()[0])} B; 2 s warm-up, 10 s measured\n")
    print("| loop | sent | acknowledged/s | delivered/s | all delivered | sender / receiver CPU us/ev |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for name in names:
        r = measure(name, folder)
        print(
            f"| {r.label} | {r.sent:,} | {r.acked_eps:,.0f} | {r.delivered_eps:,.0f} | {r.complete} | "
            f"{r.sender_cpu_us:.1f} / {r.receiver_cpu_us:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
