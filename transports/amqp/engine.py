"""AMQP 1.0 connections: python-qpid-proton's protocol engine driven by the asyncio loop.

Proton's own reactor wants a thread of its own; bridged to asyncio it spent its time
fighting the event loop for the GIL (a first version did that: ~3-6k acknowledged
messages/s). Here proton is used as what it also is, a sans-IO protocol engine: an
asyncio ``Protocol`` pushes the bytes it reads into a ``proton.Transport``, handles
the engine's events (credit, dispositions, deliveries) in the loop's thread and
writes what the engine has to send, once per loop pass. So ``deliver`` runs in the
loop's thread and nothing crosses threads.

One ``SenderConnection`` or ``ReceiverConnection`` is one socket, one AMQP
connection, one session and one link.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import time
from typing import Any

from cproton import (
    PN_DELIVERY,
    PN_LINK_FLOW,
    PN_TRANSPORT,
    isnull,
    pn_collector_peek,
    pn_collector_pop,
    pn_event_delivery,
    pn_event_type,
)
from proton import Collector, Connection, Delivery, Event, Link, Message, Transport

from iotbench.transports.base import Deliver, ReceiverDefaults, TransportError
from iotbench.transports.endpoints import Endpoint

__all__ = ["AmqpConnection", "ReceiverConnection", "SenderConnection"]

_DATA_SECTION = b"\x00\x53\x75\xb0"  # described type 0x75 (data), binary with a 32-bit length
_CLOSE_TIMEOUT_S = 5.0
_TICK_S = 1.0  # heartbeats: RabbitMQ asks for a frame at least every 60 s
_ids = itertools.count()


class AmqpConnection(asyncio.Protocol):
    """One socket, one proton connection, session and link; events handled in the loop."""

    def __init__(self, endpoint: Endpoint, role: str, address: str) -> None:
        self.where = str(endpoint)
        self.loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = self.loop.create_future()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.broken: TransportError | None = None
        self.socket: asyncio.Transport | None = None
        self._unread = b""
        self._flush_due = False
        self._tick: asyncio.TimerHandle | None = None
        self.engine = Transport()
        sasl = self.engine.sasl()
        sasl.allowed_mechs("PLAIN" if endpoint.username else "ANONYMOUS")
        sasl.allow_insecure_mechs = True  # PLAIN over plain TCP: loopback, or the operator's choice
        self.conn = Connection()
        self.conn.container = f"iotbench-{role}-{next(_ids)}"
        self.conn.hostname = endpoint.host
        if endpoint.username:
            self.conn.user, self.conn.password = endpoint.username, endpoint.password or ""
        self.engine.bind(self.conn)
        self.collector = Collector()
        self.conn.collect(self.collector)
        self.conn.open()
        session = self.conn.session()
        session.open()
        self.link = self.make_link(session, f"iotbench-{role}", address)
        self.link.open()

    def make_link(self, session: Any, name: str, address: str) -> Any:
        raise NotImplementedError

    # -- asyncio side ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.socket = transport  # type: ignore[assignment]
        self._tick = self.loop.call_later(_TICK_S, self._on_tick)
        self.flush()

    def data_received(self, data: bytes) -> None:
        self._unread = self._unread + data if self._unread else data
        self._push()

    def _push(self) -> None:
        """Feed the engine; it takes no more while the session's incoming window is full of
        deliveries nobody has read, so read them (``process``) and feed it the rest."""
        engine, data, room = self.engine, self._unread, 0
        while data:
            room = engine.capacity()
            if room <= 0:
                self.process()
                room = engine.capacity()
                if room <= 0:
                    break
            engine.push(data[:room])
            data = data[room:]
        self._unread = data
        self.process()
        socket = self.socket
        if data and room < 0:  # the engine is closed: it will never take the rest
            self._unread = b""
        elif data:  # read no more from the socket until the engine took this
            if socket is not None and socket.is_reading():
                socket.pause_reading()
            self.loop.call_later(0.001, self._push)
        elif socket is not None and not socket.is_reading() and not socket.is_closing():
            socket.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.socket = None
        self.engine.close_tail()
        self.process()
        self.fail(f"connection lost{': ' + str(exc) if exc else ''}")

    def _on_tick(self) -> None:
        self.engine.tick(time.monotonic())
        self.flush()
        if self.socket is not None:
            self._tick = self.loop.call_later(_TICK_S, self._on_tick)

    def flush(self) -> None:
        """Write what the engine has to send: once per loop pass, however many messages."""
        if not self._flush_due:
            self._flush_due = True
            self.loop.call_soon(self._write)

    def _write(self) -> None:
        self._flush_due = False
        engine, socket = self.engine, self.socket
        if socket is None:
            return
        pending = engine.pending()
        while pending > 0:  # the engine makes frames as its output buffer empties: take them all
            socket.write(engine.peek(pending))  # type: ignore[arg-type]  # proton returns bytes when pending > 0
            engine.pop(pending)
            pending = engine.pending()
        if pending < 0 and not socket.is_closing():  # the engine is done with the socket
            socket.close()

    # -- engine events -----------------------------------------------------------------

    def process(self) -> None:
        """Handle the engine's events. The per-message ones (deliveries, credit, transport)
        are read straight from the C event, without the five wrapper objects that
        ``Event.wrap`` builds for each: that was a third of the transport's CPU."""
        impl = self.collector._impl
        on_delivery, on_credit = self.on_delivery, self.on_credit
        while not isnull(raw := pn_collector_peek(impl)):
            kind = pn_event_type(raw)
            if kind == PN_DELIVERY:
                on_delivery(Delivery.wrap(pn_event_delivery(raw)))
            elif kind == PN_LINK_FLOW:
                on_credit()
            elif kind != PN_TRANSPORT:
                self.on_endpoint_event(Event.wrap(raw))
            pn_collector_pop(impl)
        self.flush()

    def on_endpoint_event(self, event: Event) -> None:
        kind = event.type
        if kind is Event.LINK_REMOTE_OPEN:
            if not self.opened.done():
                self.opened.set_result(None)
        elif kind in (Event.LINK_REMOTE_CLOSE, Event.SESSION_REMOTE_CLOSE, Event.CONNECTION_REMOTE_CLOSE):
            endpoint = event.link or event.session or event.connection
            cond = endpoint.remote_condition if endpoint is not None else None
            self.fail(f"closed by the broker{': ' + _describe(cond) if cond else ''}")
            if kind is Event.CONNECTION_REMOTE_CLOSE:
                self.conn.close()
        elif kind is Event.TRANSPORT_ERROR:
            self.fail(f"protocol error: {_describe(self.engine.condition)}")
        elif kind is Event.TRANSPORT_CLOSED:
            self.fail("connection closed")

    def on_delivery(self, delivery: Delivery) -> None: ...

    def on_credit(self) -> None: ...

    def fail(self, reason: str) -> None:
        if self.broken is None:
            self.broken = TransportError(f"{self.where}: {reason}")
        for future in (self.opened,):
            if not future.done():
                future.set_exception(self.broken)
                future.exception()  # retrieved: an open nobody waits for any more is no error
        self.fail_waiting(self.broken)
        if self.socket is None or self.engine.closed:
            self._finish()

    def fail_waiting(self, error: TransportError) -> None: ...

    def _finish(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        if not self.closed.done():
            self.closed.set_result(None)

    def abort(self, reason: str) -> None:
        """Drop the socket without a close handshake (a peer that never spoke AMQP)."""
        if self.socket is not None:
            self.socket.abort()
        self.fail_waiting(TransportError(f"{self.where}: {reason}"))
        self._finish()

    async def close(self) -> None:
        if self.socket is not None and not self.closed.done():
            self.conn.close()
            self.flush()
            try:
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await asyncio.shield(self.closed)
            except TimeoutError:
                pass
        if self.socket is not None:
            self.socket.abort()
        self.fail_waiting(TransportError(f"{self.where}: closed before the broker answered"))
        self._finish()


class SenderConnection(AmqpConnection):
    def __init__(self, endpoint: Endpoint, role: str, address: str, settled: bool) -> None:
        self.settled = settled
        self.backlog: list[tuple[bytes, asyncio.Future[None]]] = []  # waiting for credit
        self.unsettled: dict[Delivery, asyncio.Future[None]] = {}
        self._tags = itertools.count()
        self._writable = True
        self._held: list[asyncio.Future[None]] = []  # pre-settled sends while the socket pushes back
        super().__init__(endpoint, role, address)

    def make_link(self, session: Any, name: str, address: str) -> Any:
        link = session.sender(name)
        link.target.address = address
        link.snd_settle_mode = Link.SND_SETTLED if self.settled else Link.SND_UNSETTLED
        return link

    async def send(self, key: str, payload: bytes) -> None:
        if self.broken is not None:
            raise self.broken
        future = self.loop.create_future()
        self.backlog.append((_DATA_SECTION + struct.pack(">I", len(payload)) + payload, future))
        if self.link.credit > 0:
            self.on_credit()
            self.flush()
        await future

    def on_credit(self) -> None:
        link, backlog = self.link, self.backlog
        n = min(link.credit, len(backlog))
        if n <= 0:
            return
        taken, self.backlog = backlog[:n], backlog[n:]
        tags, unsettled = self._tags, self.unsettled
        for body, future in taken:
            delivery = link.delivery(str(next(tags)))
            link.send(body)
            link.advance()
            if self.settled:
                delivery.settle()
                if self._writable:
                    future.set_result(None)
                else:
                    self._held.append(future)
            else:
                unsettled[delivery] = future

    def on_delivery(self, delivery: Delivery) -> None:
        if not delivery.updated:
            return
        future = self.unsettled.pop(delivery, None)
        state = delivery.remote_state
        delivery.settle()
        if future is None or future.done():
            return
        if state == Delivery.ACCEPTED:
            future.set_result(None)
        else:
            how: dict[Any, str] = {
                Delivery.REJECTED: "rejected",
                Delivery.RELEASED: "released",
                Delivery.MODIFIED: "modified",
            }
            future.set_exception(TransportError(f"the broker {how.get(state, state)} the message"))

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        held, self._held = self._held, []
        for future in held:
            if not future.done():
                future.set_result(None)

    def fail_waiting(self, error: TransportError) -> None:
        waiting = [f for _, f in self.backlog] + list(self.unsettled.values()) + self._held
        self.backlog, self._held = [], []
        self.unsettled.clear()
        for future in waiting:
            if not future.done():
                future.set_exception(error)


class ReceiverConnection(AmqpConnection, ReceiverDefaults):
    def __init__(self, endpoint: Endpoint, address: str, credit: int, deliver: Deliver) -> None:
        self.credit, self.deliver = credit, deliver
        self._deliver_error: str | None = None
        self._message = Message()
        super().__init__(endpoint, "receiver", address)
        self.link.flow(credit)

    def failure(self) -> str | None:
        if self._deliver_error is None and self.broken is not None:
            return str(self.broken)
        return self._deliver_error

    def make_link(self, session: Any, name: str, address: str) -> Any:
        link = session.receiver(name)
        link.source.address = address
        return link

    def on_delivery(self, delivery: Delivery) -> None:
        if not delivery.readable or delivery.partial:
            return
        link, message = self.link, self._message
        data = link.recv(delivery.pending)
        link.advance()
        body = _data_section(data)
        if body is None:  # not the plain shape RabbitMQ delivers: let proton decode it
            message.decode(data)
            body = message.body if isinstance(message.body, bytes) else bytes(message.body)  # type: ignore[arg-type]
        delivery.update(Delivery.ACCEPTED)
        delivery.settle()
        if self._deliver_error is not None:
            return  # the consumer broke: the cell has failed, nothing more is delivered
        try:
            self.deliver(body)
        except Exception as exc:  # noqa: BLE001 - it would escape into proton's event loop: fail the cell instead
            self._deliver_error = f"deliver raised {type(exc).__name__}: {exc}"
        if link.credit < self.credit // 2:  # top the prefetch up in chunks, not per message
            link.flow(self.credit - link.credit)


_SIZE_WIDTH = {0xC0: 1, 0xC1: 1, 0xD0: 4, 0xD1: 4}  # list8/map8, list32/map32: size field width
_EMPTY = {0x40, 0x45}  # null, list0


def _data_section(raw: bytes | bytearray) -> bytes | None:
    """The payload of a message made of list/map sections and one final data section.

    RabbitMQ delivers ``header, properties, data``; skipping the first two by their
    size fields costs a fraction of a full ``Message.decode``. Any other shape: None.
    """
    i, n = 0, len(raw)
    while i + 4 <= n:
        if raw[i] != 0x00 or raw[i + 1] != 0x53:
            return None
        code, ctor = raw[i + 2], raw[i + 3]
        i += 4
        if code == 0x75:  # data
            if ctor == 0xA0:
                size, i = raw[i], i + 1
            elif ctor == 0xB0:
                size, i = int.from_bytes(raw[i : i + 4], "big"), i + 4
            else:
                return None
            return bytes(raw[i : i + size]) if i + size == n else None
        if ctor in _EMPTY:
            continue
        width = _SIZE_WIDTH.get(ctor)
        if width is None:
            return None
        i += width + int.from_bytes(raw[i : i + width], "big")
    return None


def _describe(condition: Any) -> str:
    if condition is None:
        return "no reason given"
    return f"{condition.name}: {condition.description}" if condition.description else str(condition.name)
