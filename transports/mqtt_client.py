"""One MQTT connection on asyncio, written here: what a publisher and a subscriber at QoS 0 or 1 need.

Why not paho-mqtt (or another library): measured against mosquitto here (one sender,
56-byte payloads, 1,000 sends in flight, the receiver in its own process, 2026-11-29),
paho driven by the event loop cost 32 us of sender CPU per event at QoS 0 and 38 us at
QoS 1 -- most of it paho's reading: three ``recv`` calls per 4-byte PUBACK and a
``Properties`` object built for each even under MQTT 3.1.1 -- and it topped out at
17,700 / 15,500 events/s, under the 31,600 / 17,300 of paho's own tight loop. This
connection costs 5 / 9 us per event and moves 58,000-83,000 / 36,000-38,000 events/s
on the same bench: the broker and the receiver bound it now. gmqtt, the asyncio client on
PyPI, is as cheap per publish but tells its caller nothing when a PUBACK arrives.

    >>> conn = MqttConnection(endpoint, version5=False, timeout=10.0, deliver=None)  # doctest: +SKIP
    >>> await conn.open_session("iotbench-sender0-1", ssl_context=None, websockets=False)
    >>> future = conn.loop.create_future(); conn.publish(b"devices/d1/telemetry", payload, future)
    >>> await future                                                                  # its PUBACK came
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from iotbench.transports import mqtt_packets as packets
from iotbench.transports.base import Deliver, TransportError
from iotbench.transports.endpoints import Endpoint

__all__ = ["MqttConnection"]

KEEPALIVE_S = 60  # seconds: the usual device default (paho, the AWS and Azure IoT SDKs)
PACKET_IDS = 65535  # QoS 1 PUBLISHes in flight on one connection at most: a packet id each
CLOSE_WAIT_S = 2.0


class MqttConnection(asyncio.Protocol):
    """An MQTT session over TCP, TLS or WebSockets: publishes, subscribes, reads in bulk.

    Packets written in one pass of the event loop go out in one ``write`` at its end: a
    sender with many sends in flight hands the socket -- and the broker -- one segment, not
    one per PUBLISH (measured: 2-4 us less sender CPU per event, 5.2 against 6.7-7.2 us at
    QoS 0). Everything a read brings is parsed at once, and the PUBACKs a subscriber owes
    for it go back in one write.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        version5: bool,
        timeout: float,
        deliver: Deliver | None,
        keepalive_s: int = KEEPALIVE_S,
    ) -> None:
        self.endpoint, self.version5, self.timeout, self.deliver = endpoint, version5, timeout, deliver
        self.loop = asyncio.get_running_loop()
        self.error: str | None = None  # why delivery stopped: ``deliver`` raised
        self.failure: TransportError | None = None  # why the session broke; None while healthy or closed by us
        self.open = False
        self.acks: dict[int, asyncio.Future[None]] = {}  # packet id -> the send (or subscribe) awaiting its ack
        self.backlog: deque[tuple[bytes, bytes, asyncio.Future[None]]] = deque()  # QoS 1 over the window
        self.window = PACKET_IDS  # QoS 1 PUBLISHes in flight: an MQTT 5 broker's receive maximum may lower it
        self.paused: asyncio.Future[None] | None = None  # the socket's buffer is full (QoS 0 sends wait)
        self.connack: asyncio.Future[None] = self.loop.create_future()
        self._closed: asyncio.Future[None] = self.loop.create_future()
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._buffer = b""
        self._next_id = 0
        self._ping: asyncio.TimerHandle | None = None
        self._keepalive_s = self._asked_keepalive_s = keepalive_s
        self._last_out = self.loop.time()  # when a packet was last written: a PINGREQ only after keepalive_s of silence
        self._hello = b""
        self._ws: ClientProtocol | None = None
        self.on_publish: Callable[[bytes, bytes, int], None] | None = None
        """Set, it takes each PUBLISH as ``(topic, payload, packet id)`` instead of ``deliver``, and no
        PUBACK goes back until ``acknowledge(packet_ids)``: a bridge acknowledges only what it forwarded."""

    # -- opening and closing ----------------------------------------------------------

    async def open_session(self, client_id: str, ssl_context: ssl.SSLContext | None, websockets: bool) -> None:
        """Connect, send CONNECT, wait for CONNACK -- all within ``timeout``."""
        ep = self.endpoint
        self._hello = packets.connect(client_id, self.version5, self._keepalive_s, ep.username, ep.password)
        if websockets:  # ``/mqtt`` with the ``mqtt`` subprotocol, as paho and amqtt use
            uri = parse_uri(f"{'wss' if ssl_context else 'ws'}://{ep.host}:{ep.port}/mqtt")
            self._ws = ClientProtocol(uri, subprotocols=[Subprotocol("mqtt")])
        connected = False
        try:
            async with asyncio.timeout(self.timeout):
                await self.loop.create_connection(
                    lambda: self, ep.host, ep.port, ssl=ssl_context, server_hostname=ep.host if ssl_context else None
                )
                connected = True
                await self.connack
        except TimeoutError:
            self.abort()
            if not connected:
                raise TransportError(f"cannot connect to {ep}: no answer within {self.timeout:g} s") from None
            raise TransportError(f"no CONNACK from {ep} within {self.timeout:g} s (is it an MQTT broker?)") from None
        except OSError as exc:  # refused, unreachable, a certificate not trusted (ssl.SSLError is one)
            raise TransportError(f"cannot connect to {ep}: {exc}") from None
        except TransportError:
            self.abort()
            raise
        self._ping = self.loop.call_later(self._keepalive_s, self._keep_alive)

    async def subscribe(self, topic_filter: str, qos: int) -> None:
        packet_id = self._packet_id()
        future = self.acks[packet_id] = self.loop.create_future()
        self.write(packets.subscribe(packet_id, topic_filter, qos, self.version5))
        try:
            async with asyncio.timeout(self.timeout):
                await future
        except TimeoutError:
            raise TransportError(f"no SUBACK from {self.endpoint} within {self.timeout:g} s") from None

    async def close(self) -> None:
        """DISCONNECT, then close once what is buffered is written; sends still waiting fail."""
        transport = self._transport
        if transport is None:
            return
        if self.open:
            self.open = False
            self.write(packets.DISCONNECT_PACKET)
            self._flush()
        transport.close()
        try:
            async with asyncio.timeout(CLOSE_WAIT_S):
                await asyncio.shield(self._closed)
        except TimeoutError:
            transport.abort()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _keep_alive(self) -> None:
        """As paho does: a PINGREQ once nothing was written for keepalive_s (the broker allows 1.5x),
        so a connection that publishes at least that often pays no pings."""
        if not self.open:
            return
        silent = self.loop.time() - self._last_out
        if silent >= self._keepalive_s - 0.01:  # timers fire a little early
            self.write(packets.PINGREQ)
            silent = 0.0
        self._ping = self.loop.call_later(self._keepalive_s - silent, self._keep_alive)

    # -- writing --------------------------------------------------------------------------

    def write(self, packet: bytes) -> None:
        """Queue ``packet``; what one pass of the event loop queued is written at its end."""
        out = self._out
        out.append(packet)
        if len(out) == 1:
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._ws is not None:
            self._ws.send_binary(data)
            data = b"".join(self._ws.data_to_send())
        transport.write(data)
        self._last_out = self.loop.time()

    def publish(self, topic: bytes, payload: bytes, future: asyncio.Future[None]) -> None:
        """A QoS 1 PUBLISH, written now or held while the window is full (in order either way);
        ``future`` resolves on its PUBACK."""
        if self.backlog or len(self.acks) >= self.window:
            self.backlog.append((topic, payload, future))
        else:
            self._publish(topic, payload, future)

    def _publish(self, topic: bytes, payload: bytes, future: asyncio.Future[None]) -> None:
        packet_id = self._packet_id()
        self.acks[packet_id] = future
        self.write(packets.publish(1, packet_id, topic, payload, self.version5))

    def _packet_id(self) -> int:
        packet_id, acks = self._next_id, self.acks
        while True:  # the window keeps fewer than 65,535 in use: a free one is near
            packet_id = packet_id % PACKET_IDS + 1
            if packet_id not in acks:
                self._next_id = packet_id
                return packet_id

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        if self._ws is not None:
            self._ws.send_request(self._ws.connect())
            transport.write(b"".join(self._ws.data_to_send()))  # type: ignore[attr-defined]
        else:
            transport.write(self._hello)  # type: ignore[attr-defined]

    def pause_writing(self) -> None:
        self.paused = self.loop.create_future()

    def resume_writing(self) -> None:
        self._resume()

    def _resume(self) -> None:
        paused, self.paused = self.paused, None
        if paused is not None and not paused.done():
            paused.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        was_open, self.open = self.open, False
        if self._ping is not None:
            self._ping.cancel()
        if was_open and self.failure is None:
            cause = f"{type(exc).__name__}: {exc}" if exc else "the broker closed it"
            self.failure = TransportError(f"connection to {self.endpoint} lost: {cause}")
        if not self.connack.done():
            why = f"no CONNACK from {self.endpoint}: the connection closed (is it an MQTT broker?)"
            self.connack.set_exception(TransportError(why))
        error = self.failure or TransportError(f"connection to {self.endpoint} closed")
        waiting = [*self.acks.values(), *(future for _, _, future in self.backlog)]
        self.acks, self.backlog = {}, deque()
        for future in waiting:
            if not future.done():
                future.set_exception(error)
        self._resume()
        if not self._closed.done():
            self._closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._ws is not None:
            data = self._from_websocket(data)
        buffer = self._buffer + data if self._buffer else data
        end = 0
        replies: list[bytes] = []  # PUBACKs owed for the QoS 1 PUBLISHes in this read
        for first, start, end in packets.split(buffer, 0):
            kind = first >> 4
            if kind == packets.PUBACK or kind == packets.SUBACK:
                self._acknowledged(kind, buffer, start, end)
            elif kind == packets.PUBLISH:
                self._received(first, buffer, start, end, replies)
            elif kind == packets.CONNACK:
                self._connected(buffer, start)
            elif kind == packets.DISCONNECT:  # MQTT 5: the broker says why before it closes
                self._fail(f"the broker disconnected: {packets.reason(buffer[start] if end > start else 0, True)}")
            elif not self.connack.done():
                self._fail(f"no CONNACK from {self.endpoint}: it answered something else (is it an MQTT broker?)")
        self._buffer = buffer[end:] if end else buffer
        if replies:
            self.write(b"".join(replies))

    # -- what the broker sent -------------------------------------------------------------

    def _acknowledged(self, kind: int, buffer: bytes, start: int, end: int) -> None:
        future = self.acks.pop(buffer[start] << 8 | buffer[start + 1], None)
        if kind == packets.PUBACK:
            code, what = (buffer[start + 2] if end - start > 2 else 0), "message"
        else:  # SUBACK: a return code per filter, after MQTT 5's properties
            code, what = (
                buffer[packets.properties(buffer, start + 2)[1] if self.version5 else start + 2],
                "subscription",
            )
        if future is not None and not future.done():  # a send that timed out was cancelled
            if code >= 0x80:
                future.set_exception(TransportError(f"the broker refused the {what}: {packets.reason(code, True)}"))
            else:
                future.set_result(None)
        backlog = self.backlog
        while backlog and len(self.acks) < self.window:
            topic, payload, waiting = backlog.popleft()
            if not waiting.done():  # a send that timed out while held is not sent at all
                self._publish(topic, payload, waiting)

    def acknowledge(self, packet_ids: list[int]) -> None:
        """PUBACK the QoS 1 PUBLISHes that ``on_publish`` was handed (0: a QoS 0 one, nothing owed)."""
        acks = [b"\x40\x02" + pid.to_bytes(2, "big") for pid in packet_ids if pid]
        if acks and self.open:
            self.write(b"".join(acks))

    def _received(self, first: int, buffer: bytes, start: int, end: int, replies: list[bytes]) -> None:
        i = start + 2 + (buffer[start] << 8 | buffer[start + 1])  # past the topic
        if self.on_publish is not None:  # a bridge: it acknowledges once it has passed the message on
            topic, packet_id = buffer[start + 2 : i], 0
            if first & 0x06:
                packet_id, i = buffer[i] << 8 | buffer[i + 1], i + 2
            if self.version5:
                i = i + 1 if buffer[i] == 0 else packets.properties(buffer, i)[1]
            self.on_publish(topic, buffer[i:end], packet_id)
            return
        if first & 0x06:  # QoS 1 (the subscription caps it there): acknowledge it
            replies.append(b"\x40\x02" + buffer[i : i + 2])
            i += 2
        if self.version5:
            i = i + 1 if buffer[i] == 0 else packets.properties(buffer, i)[1]
        if self.error is not None or self.deliver is None:
            return  # the consumer broke: the cell has failed, nothing more is delivered
        try:
            self.deliver(buffer[i:end])
        except Exception as exc:  # noqa: BLE001 - the cell must fail with the reason
            self.error = f"deliver raised {type(exc).__name__}: {exc}"

    def _connected(self, buffer: bytes, start: int) -> None:
        code = buffer[start + 1]
        if code:
            self._fail(f"{self.endpoint} refused the connection: {packets.reason(code, self.version5)}")
            return
        if self.version5:
            found = packets.properties(buffer, start + 2)[0]
            self.window = min(PACKET_IDS, found.get(packets.RECEIVE_MAXIMUM, PACKET_IDS))
            self._keepalive_s = found.get(packets.SERVER_KEEP_ALIVE) or self._asked_keepalive_s
        self.open = True
        if not self.connack.done():
            self.connack.set_result(None)

    def _fail(self, why: str) -> None:
        """A broken session: say why and close (``connection_lost`` fails what waits on it)."""
        if not self.connack.done():
            self.connack.set_exception(TransportError(why))
        elif self.failure is None:
            self.failure = TransportError(f"connection to {self.endpoint} lost: {why}")
        self.abort()

    def _from_websocket(self, data: bytes) -> bytes:
        """The MQTT bytes in what arrived; the upgrade's answer and control frames are handled here."""
        ws = self._ws
        assert ws is not None and self._transport is not None
        ws.receive_data(data)
        chunks = []
        for event in ws.events_received():
            if isinstance(event, Response):
                if ws.handshake_exc is not None:
                    self._fail(f"no CONNACK from {self.endpoint}: WebSocket upgrade refused: {ws.handshake_exc}")
                    return b""
                ws.send_binary(self._hello)
            elif isinstance(event, Frame) and event.opcode in (Opcode.BINARY, Opcode.CONT):
                chunks.append(event.data)
        pending = ws.data_to_send()  # CONNECT after the upgrade, pongs, a close's answer
        if pending:
            self._transport.write(b"".join(pending))
        return b"".join(chunks)
