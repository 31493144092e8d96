"""AMQP 1.0 unsettled to RabbitMQ with python-qpid-proton, within link credit and ``WINDOW`` unsettled.

``amqp-engine`` drives proton's engine on a select loop; ``amqp-reactor`` is proton's own reactor
(``Container`` + ``MessagingHandler``). The amqp transport writes its own client on the engine, so both
library loops are measured and the faster is its yardstick. A receiver on the engine counts.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, cast

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
from proton import Collector, Connection, Delivery, Link, Transport
from proton import Endpoint as ProtonEndpoint
from proton.handlers import MessagingHandler
from proton.reactor import Container

from iotbench.studies.direct_loops.base import (
    ACK_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    POLL_S,
    WINDOW,
    DirectLoop,
    DirectLoopError,
    Ready,
    Stop,
    Timeline,
    bounded,
)
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.servers.rabbitmq import RabbitMQServer

__all__ = ["ENGINE", "REACTOR"]

ADDRESS = "/queue/direct"


def _body(payload: bytes) -> bytes:
    """The bare data section the amqp transport sends (proton's Message adds two empty sections: 69 B, not 64)."""
    return b"\x00\x53\x75\xb0" + struct.pack(">I", len(payload)) + payload


class _ProtonPeer:
    """One socket, one proton engine with a connection and a session, pumped with select."""

    def __init__(self, endpoint: Endpoint, role: str, collect: bool) -> None:
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
        link.open()
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not link.state & ProtonEndpoint.REMOTE_ACTIVE:
            bounded(deadline, "AMQP attach")
            condition = link.remote_condition or self.conn.remote_condition or self.engine.condition
            if condition is not None:
                raise DirectLoopError(f"the broker refused the link: {condition}")
            self.pump(POLL_S)


def engine_send(
    endpoint: Endpoint, payload: bytes, keys: list[str], until: float, timeline: Timeline
) -> tuple[int, int]:
    peer = _ProtonPeer(endpoint, "sender", collect=True)
    link = peer.session.sender("direct-sender")
    link.target.address = ADDRESS
    link.snd_settle_mode = Link.SND_UNSETTLED
    peer.open_link(link)
    body, events = _body(payload), peer.collector._impl  # type: ignore[union-attr]
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
        bounded(deadline, f"disposition for {sent - acked - refused} of {sent} messages")
        peer.pump(POLL_S)
        settle()
    timeline.close(acked)
    peer.sock.close()
    return sent, acked


def reactor_send(
    endpoint: Endpoint, payload: bytes, keys: list[str], until: float, timeline: Timeline
) -> tuple[int, int]:
    class Sender(MessagingHandler):
        def __init__(self) -> None:
            super().__init__(prefetch=0, auto_accept=False, auto_settle=True)
            self.sent = self.acked = self.refused = 0
            self.error: str | None = None
            self.body, self.container, self.sender = _body(payload), None, cast(Any, None)

        def on_start(self, event: Any) -> None:
            self.container = container = event.container
            url = (
                f"amqp://{endpoint.username or 'guest'}:{endpoint.password or 'guest'}@{endpoint.host}:{endpoint.port}"
            )
            conn = container.connect(url, allowed_mechs="PLAIN", allow_insecure_mechs=True, reconnect=False)
            self.sender = container.create_sender(conn, ADDRESS)
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


def receive(endpoint: Endpoint, ready: Ready, stop: Stop, timeline: Timeline) -> int:
    credit = WINDOW
    peer = _ProtonPeer(endpoint, "receiver", collect=False)
    link = peer.session.receiver("direct-receiver")
    link.source.address = ADDRESS
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


ENGINE = DirectLoop(
    f"AMQP 1.0 unsettled -> RabbitMQ: proton engine on a select loop, window {WINDOW:,}",
    RabbitMQServer,
    engine_send,
    receive,
)
REACTOR = DirectLoop(
    f"AMQP 1.0 unsettled -> RabbitMQ: proton's reactor (Container), window {WINDOW:,}",
    RabbitMQServer,
    reactor_send,
    receive,
)
