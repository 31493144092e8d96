"""AMQP 1.0 through python-qpid-proton, to RabbitMQ 3.10 with its AMQP 1.0 plugin.

Proton runs its own reactor, so it gets a thread of its own (one per transport,
shared by all its connections). The two sides talk through two mailboxes that wake
the other thread once per batch of items, not once per item: asyncio hands sends to
the reactor through proton's ``EventInjector``, the reactor hands acknowledgements
and received payloads back with one ``call_soon_threadsafe``. So ``deliver`` runs in
the event loop's thread, as the contract says.

Every sender is one AMQP connection with one link to the queue's address. Unsettled
(the default): ``send`` returns when RabbitMQ accepted the message (its disposition).
Pre-settled (``settled=True``): ``send`` returns once the transfer is handed to the
link with credit -- fire and forget, as the protocol allows. The receiver is one
connection consuming the queue with ``credit`` messages of prefetch.

A ``url`` option (see ``endpoints.py``) uses an external broker instead of starting
RabbitMQ; errors name the host and port, never the credentials.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import struct
import threading
from pathlib import Path
from typing import Any, Callable, ClassVar, Generic, Mapping, TypeVar

from proton import Delivery
from proton.handlers import MessagingHandler
from proton.reactor import ApplicationEvent, AtMostOnce, Container, EventInjector

from iotbench.transports.base import Deliver, TransportError
from iotbench.transports.endpoints import Endpoint, external_endpoint
from iotbench.transports.servers import LOOPBACK

__all__ = ["AmqpTransport"]

T = TypeVar("T")
_RUN = "iotbench_run"
_DATA_SECTION = b"\x00\x53\x75\xb0"  # described type 0x75 (data), binary with a 32-bit length
_JOIN_TIMEOUT_S = 10.0
_CLOSE_TIMEOUT_S = 5.0


class _Mailbox(Generic[T]):
    """Items from one thread, taken in batches by the other; one wake-up per batch."""

    def __init__(self, wake: Callable[[], None], take: Callable[[list[T]], None]) -> None:
        self._wake, self._take = wake, take
        self._items: list[T] = []
        self._lock = threading.Lock()
        self._woken = False

    def put(self, item: T) -> None:
        with self._lock:
            self._items.append(item)
            if self._woken:
                return
            self._woken = True
        self._wake()

    def drain(self) -> None:
        with self._lock:
            items, self._items, self._woken = self._items, [], False
        if items:
            self._take(items)


class _Reactor(MessagingHandler):
    """The proton container and its thread; ``call(fn)`` runs ``fn`` there."""

    def __init__(self) -> None:
        super().__init__(prefetch=0)
        self._injector = EventInjector()
        self.calls: _Mailbox[Callable[[], None]] = _Mailbox(
            lambda: self._injector.trigger(ApplicationEvent(_RUN)), lambda fns: [fn() for fn in fns])
        self.container = Container(self)
        self.container.container_id = "iotbench"
        self._thread = threading.Thread(target=self._run, name="proton-reactor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.container.run()
        except Exception:  # noqa: BLE001 - a dead reactor fails every waiting send through its handlers
            pass

    def on_start(self, event: Any) -> None:
        self.container.selectable(self._injector)

    def on_iotbench_run(self, event: Any) -> None:
        self.calls.drain()

    def call(self, fn: Callable[[], None]) -> None:
        self.calls.put(fn)

    def stop(self) -> None:
        self.call(self.container.stop)
        self._injector.close()
        self._thread.join(_JOIN_TIMEOUT_S)


class _Endpoint(MessagingHandler):
    """One AMQP connection with one link; its events arrive in the reactor's thread."""

    def __init__(self, transport: "AmqpTransport", loop: asyncio.AbstractEventLoop, prefetch: int) -> None:
        super().__init__(prefetch=prefetch, auto_accept=True, auto_settle=True)
        self.endpoint = str(transport.endpoint)
        self.reactor = transport.reactor
        self.loop = loop
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.acks: _Mailbox[tuple[asyncio.Future[None], Exception | None]] = _Mailbox(
            lambda: loop.call_soon_threadsafe(self.acks.drain), _settle_futures)
        self.connection: Any = None
        self.link: Any = None
        self.failure: TransportError | None = None

    def fail(self, reason: str) -> None:
        """Reactor thread: the connection is gone; everything waiting on it fails."""
        if self.failure is None:
            self.failure = TransportError(f"{self.endpoint}: {reason}")
        self.fail_waiting(self.failure)
        self.acks.put((self.opened, self.failure))
        self.acks.put((self.closed, None))

    def fail_waiting(self, error: TransportError) -> None: ...

    def on_link_opened(self, event: Any) -> None:
        self.acks.put((self.opened, None))  # one link per connection: it is ours

    def on_transport_error(self, event: Any) -> None:
        cond = event.transport.condition
        self.fail(f"connection failed: {cond.description if cond else 'transport error'}")

    def on_connection_error(self, event: Any) -> None:
        self.fail(f"connection refused by the broker: {event.connection.remote_condition}")

    def on_link_error(self, event: Any) -> None:
        self.fail(f"link refused by the broker: {event.link.remote_condition}")

    def on_disconnected(self, event: Any) -> None:
        cond = event.transport.condition if event.transport is not None else None
        self.fail(f"disconnected: {cond.description}" if cond and cond.description else "disconnected")

    def on_connection_closed(self, event: Any) -> None:
        self.fail("connection closed")

    async def open(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self.opened
        except TimeoutError:
            self.reactor.call(self._close)
            if not self.closed.done():  # nothing was opened: no close handshake to wait for
                self.closed.set_result(None)
            raise TransportError(f"no AMQP open/attach from {self.endpoint} within {timeout:g} s "
                                 "(is it an AMQP 1.0 broker?)") from None

    def _close(self) -> None:
        if self.connection is not None:
            self.connection.close()

    async def close(self) -> None:
        if self.closed.done():
            return
        self.reactor.call(self._close)
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                await asyncio.shield(self.closed)
        except TimeoutError:
            pass


class _SenderEndpoint(_Endpoint):
    def __init__(self, transport: "AmqpTransport", loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(transport, loop, prefetch=0)
        self.settled = transport.settled
        self.outgoing: collections.deque[tuple[bytes, asyncio.Future[None]]] = collections.deque()
        self.unsettled: dict[Delivery, asyncio.Future[None]] = {}
        self._tags = itertools.count()

    def on_sendable(self, event: Any) -> None:
        self.pump()

    def pump(self) -> None:
        """Reactor thread: send what is queued while the link has credit."""
        link, outgoing, acks = self.link, self.outgoing, self.acks
        if link is None or self.failure is not None:
            return
        while outgoing and link.credit > 0:
            body, future = outgoing.popleft()
            delivery = link.delivery(str(next(self._tags)))
            link.stream(body)
            link.advance()
            if self.settled:
                delivery.settle()
                acks.put((future, None))
            else:
                self.unsettled[delivery] = future

    def on_accepted(self, event: Any) -> None:
        future = self.unsettled.pop(event.delivery, None)
        if future is not None:
            self.acks.put((future, None))

    def _refused(self, event: Any, how: str) -> None:
        future = self.unsettled.pop(event.delivery, None)
        if future is not None:
            self.acks.put((future, TransportError(f"the broker {how} the message")))

    def on_rejected(self, event: Any) -> None:
        self._refused(event, "rejected")

    def on_released(self, event: Any) -> None:
        self._refused(event, "released")

    def fail_waiting(self, error: TransportError) -> None:
        waiting = [f for _, f in self.outgoing] + list(self.unsettled.values())
        self.outgoing.clear()
        self.unsettled.clear()
        for future in waiting:
            self.acks.put((future, error))

    async def send(self, key: str, payload: bytes) -> None:
        if self.failure is not None:
            raise self.failure
        future = self.loop.create_future()
        body = _DATA_SECTION + struct.pack(">I", len(payload)) + payload
        self.reactor.call(lambda: (self.outgoing.append((body, future)), self.pump()))
        await future


class _ReceiverEndpoint(_Endpoint):
    def __init__(self, transport: "AmqpTransport", loop: asyncio.AbstractEventLoop, deliver: Deliver) -> None:
        super().__init__(transport, loop, prefetch=transport.credit)
        self.payloads: _Mailbox[bytes] = _Mailbox(
            lambda: loop.call_soon_threadsafe(self.payloads.drain), lambda items: [deliver(p) for p in items])

    def on_message(self, event: Any) -> None:
        body = event.message.body
        self.payloads.put(bytes(body) if not isinstance(body, bytes) else body)


def _settle_futures(items: list[tuple[asyncio.Future[None], Exception | None]]) -> None:
    for future, error in items:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
            future.exception()  # a failed open nobody awaits any more is not an unretrieved error


class AmqpTransport:
    """``AmqpTransport(settled=False)``: unsettled sends, acknowledged on RabbitMQ's accept."""

    name: ClassVar[str] = "amqp"
    OPTIONS: ClassVar[Mapping[str, Any]] = {
        "settled": False,  # True: pre-settled (at most once), send returns once handed to the link
        "address": "/queue/iotbench",  # RabbitMQ: /queue/NAME declares the queue and routes to it
        "credit": 1000,  # the receiver's prefetch
        "url": "",  # amqp://[user@]host:port: an external broker (password: IOTBENCH_AMQP_PASSWORD)
        "connect_timeout_s": 10.0,
    }
    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]] = [{"settled": False}, {"settled": True}]

    def __init__(self, settled: bool = False, address: str = "/queue/iotbench", credit: int = 1000,
                 url: str = "", connect_timeout_s: float = 10.0) -> None:
        self.settled, self.address, self.credit = settled, address, credit
        self.connect_timeout_s = connect_timeout_s
        self.endpoint: Endpoint | None = None
        self._url = url
        self._server: Any = None
        self.reactor: _Reactor | None = None
        self._endpoints: list[_Endpoint] = []

    async def start(self, workdir: Path) -> None:
        # bad options fail the cell here, so the matrix goes on
        if not isinstance(self.settled, bool):
            raise TransportError(f"settled {self.settled!r} is not a boolean; use true or false")
        if not isinstance(self.credit, int) or self.credit < 1:
            raise TransportError(f"credit {self.credit!r} must be a positive integer")
        self.endpoint = external_endpoint(self._url, "amqp", {"amqp": 5672})
        if self.endpoint is None:
            from iotbench.transports.rabbitmq_server import start_rabbitmq

            self._server = await asyncio.get_running_loop().run_in_executor(None, start_rabbitmq, Path(workdir))
            self.endpoint = Endpoint("amqp", LOOPBACK, self._server.port, "guest", "guest")
        self.reactor = _Reactor()

    async def _open(self, endpoint: _Endpoint, make_link: Callable[[Container, Any], Any]) -> None:
        reactor, where = self.reactor, self.endpoint
        if reactor is None or where is None:
            raise TransportError("amqp transport used before start()")
        self._endpoints.append(endpoint)

        def connect() -> None:
            try:
                endpoint.connection = reactor.container.connect(
                    f"amqp://{where.host}:{where.port}", handler=endpoint, reconnect=False,
                    user=where.username, password=where.password,
                    allowed_mechs="PLAIN" if where.username else "ANONYMOUS", allow_insecure_mechs=True)
                endpoint.link = make_link(reactor.container, endpoint.connection)
            except Exception as exc:  # noqa: BLE001 - reported to the waiting side
                endpoint.fail(f"cannot connect: {exc}")

        reactor.call(connect)
        await endpoint.open(self.connect_timeout_s)

    async def open_sender(self, index: int) -> _SenderEndpoint:
        endpoint = _SenderEndpoint(self, asyncio.get_running_loop())
        options = AtMostOnce() if self.settled else None
        await self._open(endpoint, lambda c, conn: c.create_sender(conn, self.address, name=f"iotbench-sender-{index}",
                                                                    options=options))
        return endpoint

    async def open_receiver(self, deliver: Deliver) -> _ReceiverEndpoint:
        endpoint = _ReceiverEndpoint(self, asyncio.get_running_loop(), deliver)
        await self._open(endpoint, lambda c, conn: c.create_receiver(conn, self.address, name="iotbench-receiver"))
        return endpoint

    async def stop(self) -> None:
        for endpoint in self._endpoints:
            await endpoint.close()
        self._endpoints.clear()
        reactor, self.reactor = self.reactor, None
        loop = asyncio.get_running_loop()
        if reactor is not None:
            await loop.run_in_executor(None, reactor.stop)
        server, self._server = self._server, None
        if server is not None:
            await loop.run_in_executor(None, server.stop)
