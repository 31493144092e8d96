"""The local Event Hubs endpoint's AMQP side: what the unchanged ``azure-eventhub`` SDK uses.

Per connection: SASL (ANONYMOUS, as the SDK offers with ``UseDevelopmentEmulator``),
open, sessions, and links of four kinds -- ``$cbs`` (put-token: SAS tokens verified
against the configured key), ``$management`` (READ of the hub and its partitions),
senders to ``<hub>`` / ``<hub>/Partitions/<n>`` (single events and 0x80013700 batches),
and receivers on ``<hub>/ConsumerGroups/<cg>/Partitions/<n>`` with the SDK's
offset / sequence-number / enqueued-time filter. Link attaches to the hub need a
put-token that grants it, as in Azure.

Deliveries are pre-settled towards consumers (the SDK reads, it does not settle) and
answered with an accepted or rejected disposition towards producers: a rejection
carries the service's condition (``com.microsoft:server-busy`` when throttled), so
the SDK reacts exactly as it does in the cloud.
"""

from __future__ import annotations

import asyncio
import logging
import re
import struct
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from azure.eventhub._pyamqp.endpoints import Source, Target
from azure.eventhub._pyamqp.error import AMQPError
from azure.eventhub._pyamqp.outcomes import Accepted, Rejected

from iotbench.transports.emulators.eventhubs.amqp import (
    AMQP_HEADER,
    BATCH_FORMAT,
    SASL_HEADER,
    frame_bytes,
    partition_key,
    perf,
    read_frame,
    split_event,
    unpack_batch,
)
from iotbench.transports.emulators.eventhubs.hub import Hub, Refused
from iotbench.transports.emulators.eventhubs.management import put_token, read_entity
from iotbench.transports.sas import grants, verify

__all__ = ["AmqpEndpoint"]

log = logging.getLogger("iotbench.eventhubs")

MAX_FRAME = 1024 * 1024 + 4096  # a full 1 MB publication fits one frame
WINDOW = 2**31 - 1  # session windows: flow control is done per link, with credit
CREDIT = 1000  # link credit granted to producers, topped up at half
FILTER = re.compile(rb"amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>)\s*'([^']*)'")
_EMPTY_FRAME = b"\x00\x00\x00\x08\x02\x00\x00\x00"


@dataclass
class _Link:
    name: bytes
    remote_handle: int
    handle: int
    path: str  # the entity path: "$cbs", "hub/Partitions/0", ...
    incoming: bool  # True: the client sends on it
    partition: str | None = None
    # producer side
    received: int = 0
    credit_left: int = 0
    partial: bytearray | None = None
    first: tuple[int, bool, int] | None = None  # delivery id, settled, message format of the open delivery
    # consumer side
    credit: int = 0
    delivery_count: int = 0
    position: int = 0
    outbox: list[bytes] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


@dataclass
class _Session:
    channel: int  # ours == the client's: one to one
    next_outgoing_id: int = 0
    links: dict[int, _Link] = field(default_factory=dict)  # by the client's handle
    replies: dict[str, _Link] = field(default_factory=dict)  # "$cbs"/"$management" -> reply link

    def new_handle(self) -> int:
        return max((link.handle for link in self.links.values()), default=-1) + 1


class AmqpEndpoint:
    """``await asyncio.start_server(AmqpEndpoint(hub, key_name, key).serve, host, port)``."""

    def __init__(self, hub: Hub, key_name: str, key: str) -> None:
        self.hub = hub
        self.key_name, self._key = key_name, key
        self.connections = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(self, reader, writer)
        try:
            await connection.run()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception as exc:  # noqa: BLE001 - one broken client must not stop the endpoint
            log.warning("connection from %s failed: %s: %s", connection.peer, type(exc).__name__, exc)
        finally:
            connection.close()

    def authorize(self, token: str) -> tuple[str, float]:
        resource = verify(token, self.key_name, self._key)
        expiry = float(dict(part.split("=", 1) for part in token.split(" ", 1)[1].split("&")).get("se", 0))
        return resource, expiry


class _Connection:
    def __init__(self, endpoint: AmqpEndpoint, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.endpoint, self.hub = endpoint, endpoint.hub
        self.reader, self.writer = reader, writer
        self.peer = writer.get_extra_info("peername")
        self.sessions: dict[int, _Session] = {}
        self.tokens: list[tuple[str, float]] = []  # (resource granted, expiry)
        self.counted = False
        self.closed = False
        self.refusing = False
        self.heartbeat: asyncio.Task[None] | None = None

    # -- life cycle ----------------------------------------------------------------

    async def run(self) -> None:
        header = await self.reader.readexactly(8)
        if header == SASL_HEADER:
            await self._sasl()
            header = await self.reader.readexactly(8)
        if header != AMQP_HEADER:
            self.writer.write(AMQP_HEADER)  # the spec's answer to an unsupported header: ours, then close
            return
        self.writer.write(AMQP_HEADER)
        while not self.closed:
            frame = await read_frame(self.reader, MAX_FRAME)
            if frame.performative is None:
                continue
            if self.refusing:  # only the client's close matters now
                self.closed = frame.performative == 0x18
                continue
            await self._dispatch(frame.channel, frame.performative, frame.fields)

    async def _sasl(self) -> None:
        self.writer.write(SASL_HEADER)
        self.writer.write(frame_bytes(0, perf.SASLMechanism(sasl_server_mechanisms=[b"ANONYMOUS"]), b"\x01"))
        await read_frame(self.reader, MAX_FRAME)  # sasl-init: anonymous, nothing to check (CBS authenticates)
        self.writer.write(frame_bytes(0, perf.SASLOutcome(code=0, additional_data=None), b"\x01"))

    def send(self, channel: int, performative: Any) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame_bytes(channel, performative))

    def close(self) -> None:
        self.closed = True
        for session in self.sessions.values():
            for link in session.links.values():
                if link.task:
                    link.task.cancel()
        if self.heartbeat:
            self.heartbeat.cancel()
        if self.counted:
            self.endpoint.connections -= 1
            self.counted = False
        self.writer.close()

    async def _dispatch(self, channel: int, code: int, fields: list[Any]) -> None:
        if code == 0x14:
            await self._transfer(channel, fields)
        elif code == 0x13:
            self._flow(channel, fields)
        elif code == 0x15:
            pass  # dispositions from consumers: deliveries to them are pre-settled
        elif code == 0x12:
            await self._attach(channel, fields)
        elif code == 0x16:
            self._detach(channel, fields)
        elif code == 0x11:
            self.sessions[channel] = _Session(channel)
            self.send(channel, perf.BeginFrame(channel, 0, WINDOW, WINDOW, 255, None, None, None))
        elif code == 0x17:
            session = self.sessions.pop(channel, None)
            for link in session.links.values() if session else ():
                if link.task:
                    link.task.cancel()
            self.send(channel, perf.EndFrame(None))
        elif code == 0x10:
            self._open(fields)
        elif code == 0x18:
            self.send(0, perf.CloseFrame(None))
            self.closed = True

    def _open(self, fields: list[Any]) -> None:
        limit = self.hub.limits.max_connections
        error = None
        if limit and self.endpoint.connections >= limit:
            self.hub.stats["refused_connections"] += 1
            error = AMQPError(
                condition=b"amqp:resource-limit-exceeded",
                description=f"connection refused: the namespace allows {limit} AMQP connections (max_connections)",
                info=None,
            )
        else:
            self.endpoint.connections += 1
            self.counted = True
            stats = self.hub.stats
            stats["connections"] = stats.get("connections", 0) + 1
            stats["peak_connections"] = max(stats.get("peak_connections", 0), self.endpoint.connections)
        self.send(0, perf.OpenFrame("iotbench-eventhubs", None, MAX_FRAME, 255, None, None, None, None, None, None))
        if error is not None:
            log.info("refused a connection from %s: %s", self.peer, error.description)
            self.send(0, perf.CloseFrame(error))
            self.refusing = True  # read on until the client's close: closing now would reset the socket
            asyncio.get_running_loop().call_later(5.0, self.writer.close)
            return
        idle_ms = fields[4]
        if idle_ms:
            self.heartbeat = asyncio.get_running_loop().create_task(self._beat(idle_ms / 2000.0))

    async def _beat(self, every: float) -> None:
        while not self.writer.is_closing():
            await asyncio.sleep(every)
            self.writer.write(_EMPTY_FRAME)

    # -- links ---------------------------------------------------------------------

    async def _attach(self, channel: int, fields: list[Any]) -> None:
        session = self.sessions[channel]
        name, remote_handle, client_receives = fields[0], fields[1], bool(fields[2])
        source, target = fields[5] or [], fields[6] or []
        address = (source[0] if client_receives else target[0]) if (source if client_receives else target) else b""
        path = _entity_path(address.decode() if isinstance(address, bytes) else str(address or ""))
        link = _Link(name, remote_handle, session.new_handle(), path, incoming=not client_receives)
        session.links[remote_handle] = link
        # pyamqp's performatives are namedtuples with defaults its annotations do not show
        reply_source = Source(address=source[0] if source else None)  # type: ignore[call-arg]
        reply_target = Target(address=target[0] if target else None)  # type: ignore[call-arg]
        self.send(
            channel,
            perf.AttachFrame(
                name,
                link.handle,
                not client_receives,
                fields[3],
                fields[4],
                reply_source,
                reply_target,
                None,
                None,
                None if client_receives is False else 0,
                self.hub.limits.max_message_bytes or None,
                None,
                None,
                None,
            ),
        )
        error = self._check_link(link, source)
        if error is not None:
            self.send(channel, perf.DetachFrame(link.handle, True, AMQPError(*error, None)))
            session.links.pop(remote_handle, None)
            return
        if link.incoming:
            link.credit_left = CREDIT
            self._grant(session, link)
        elif link.path in ("$cbs", "$management"):
            session.replies[link.path] = link
        else:
            link.task = asyncio.get_running_loop().create_task(self._pump(session, link))

    def _check_link(self, link: _Link, source: list[Any]) -> tuple[bytes, str] | None:
        """Why ``link`` cannot attach (condition, description), or None when it can."""
        if link.path in ("$cbs", "$management"):
            return None
        parts = link.path.split("/")
        if parts[0].lower() != self.hub.name.lower():
            return (
                b"amqp:not-found",
                f"the messaging entity '{parts[0]}' could not be found (this endpoint serves '{self.hub.name}')",
            )
        if not self._granted(link.path):
            return b"amqp:unauthorized-access", f"no valid put-token on $cbs grants '{link.path}'"
        try:
            if link.incoming:
                if len(parts) == 3 and parts[1].lower() == "partitions":
                    link.partition = self.hub.partition(parts[2]).id
                elif len(parts) != 1 and parts[1].lower() != "publishers":
                    return b"amqp:not-found", f"cannot send to '{link.path}'"
                return None
            if len(parts) != 5 or parts[1].lower() != "consumergroups" or parts[3].lower() != "partitions":
                return (
                    b"amqp:not-found",
                    f"cannot receive from '{link.path}': use <hub>/ConsumerGroups/<cg>/Partitions/<n>",
                )
            partition = self.hub.partition(parts[4])
            link.partition = partition.id
            filters = source[7] if len(source) > 7 and source[7] else {}
            link.position = 0
            for expression in filters.values():
                match = FILTER.search(expression if isinstance(expression, bytes) else str(expression).encode())
                if match:
                    kind, operator, value = (g.decode() for g in match.groups())
                    link.position = partition.start_position(kind, operator, value)
        except Refused as exc:
            return exc.condition.encode(), exc.description
        except ValueError as exc:
            return b"amqp:invalid-field", f"bad receiver filter: {exc}"
        return None

    def _granted(self, path: str) -> bool:
        now = time.time()
        return any(expiry >= now and grants(resource, path) for resource, expiry in self.tokens)

    def _grant(self, session: _Session, link: _Link) -> None:
        self.send(
            session.channel,
            perf.FlowFrame(
                None,
                WINDOW,
                session.next_outgoing_id,
                WINDOW,
                link.handle,
                link.received,
                link.credit_left,
                None,
                None,
                None,
                None,
            ),
        )

    def _flow(self, channel: int, fields: list[Any]) -> None:
        session = self.sessions.get(channel)
        if session is None or fields[4] is None:
            return
        link = session.links.get(fields[4])
        if link is None or link.incoming:
            return
        their_count = fields[5] if fields[5] is not None else link.delivery_count
        link.credit = max(0, their_count + (fields[6] or 0) - link.delivery_count)
        link.wake.set()
        if link.outbox:
            self._flush_replies(session, link)

    def _detach(self, channel: int, fields: list[Any]) -> None:
        session = self.sessions.get(channel)
        link = session.links.pop(fields[0], None) if session else None
        if link is None:
            return
        if link.task:
            link.task.cancel()
        if session and session.replies.get(link.path) is link:
            del session.replies[link.path]
        self.send(channel, perf.DetachFrame(link.handle, True, None))

    # -- deliveries ----------------------------------------------------------------

    def _deliver(self, session: _Session, link: _Link, payload: bytes) -> None:
        tag = struct.pack(">I", link.delivery_count)
        self.send(
            session.channel,
            perf.TransferFrame(
                link.handle, session.next_outgoing_id, tag, 0, True, False, None, None, None, None, None, payload
            ),
        )
        session.next_outgoing_id += 1
        link.delivery_count += 1
        link.credit -= 1

    async def _pump(self, session: _Session, link: _Link) -> None:
        """Feed a consumer link from its partition, as credit allows."""
        partition = self.hub.partition(link.partition or "0")
        while True:
            while link.credit <= 0:
                link.wake.clear()
                await link.wake.wait()
            await partition.wait_beyond(link.position)
            end = min(len(partition.events), link.position + link.credit, link.position + 200)
            for position in range(link.position, end):
                self._deliver(session, link, partition.delivery(position))
            link.position = end
            await self.writer.drain()

    def _flush_replies(self, session: _Session, link: _Link) -> None:
        while link.outbox and link.credit > 0:
            self._deliver(session, link, link.outbox.pop(0))

    async def _transfer(self, channel: int, fields: list[Any]) -> None:
        session = self.sessions[channel]
        link = session.links.get(fields[0])
        if link is None or not link.incoming:
            return
        if link.first is None:
            link.first = (fields[1], bool(fields[4]), fields[3] or 0)
            link.partial = bytearray()
        assert link.partial is not None
        link.partial += fields[-1]
        if fields[5]:  # more frames of this delivery follow
            return
        (delivery_id, settled, message_format), payload = link.first, bytes(link.partial)
        link.first, link.partial = None, None
        link.received += 1
        link.credit_left -= 1
        if link.credit_left <= CREDIT // 2:
            link.credit_left = CREDIT
            self._grant(session, link)
        try:
            if link.path == "$cbs":
                self._put_token(session, payload)
            elif link.path == "$management":
                self._management(session, payload)
            else:
                self._publish(link, payload, message_format)
            state: Any = Accepted()
        except Refused as exc:
            state = Rejected(error=AMQPError(exc.condition.encode(), exc.description, None))
        if not settled:
            self.send(channel, perf.DispositionFrame(True, delivery_id, delivery_id, True, state, None))

    def _publish(self, link: _Link, payload: bytes, message_format: int) -> None:
        if message_format == BATCH_FORMAT:
            events, annotations = unpack_batch(payload)
            key = annotations.get(b"x-opt-partition-key")
            key = key.decode() if isinstance(key, bytes) else key
        else:
            events = [split_event(payload)]
            key = partition_key(events[0])
        if not events:
            raise Refused("amqp:invalid-field", 400, "an empty batch")
        self.hub.publish(events, len(payload), partition=link.partition, key=key)

    def _reply(self, session: _Session, node: str, payload: bytes) -> None:
        link = session.replies.get(node)
        if link is None:
            log.warning("no reply link for %s on channel %s", node, session.channel)
            return
        link.outbox.append(payload)
        self._flush_replies(session, link)

    def _put_token(self, session: _Session, payload: bytes) -> None:
        reply, granted, refusal = put_token(self.endpoint.authorize, payload)
        if granted is not None:
            self.tokens.append(granted)
        else:
            log.info("put-token refused for %s: %s", self.peer, refusal)
        self._reply(session, "$cbs", reply)

    def _management(self, session: _Session, payload: bytes) -> None:
        self._reply(session, "$management", read_entity(self.hub, self.endpoint.authorize, payload))


def _entity_path(address: str) -> str:
    """``amqps://host:port/hub/Partitions/0`` -> ``hub/Partitions/0`` (``$cbs`` stays as it is)."""
    if "://" in address:
        address = urlparse(address).path
    return address.strip("/")
