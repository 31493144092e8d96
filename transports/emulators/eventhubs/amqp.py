"""AMQP 1.0 framing and Event Hubs message surgery for the local endpoint.

The type codec is not written here: it is the one the ``azure-eventhub`` SDK ships
(``azure.eventhub._pyamqp``: ``_encode``, ``_decode``, ``performatives``). Reusing the
client's own codec means the endpoint writes exactly what the client reads -- and its
``encode_frame`` always writes every field of a performative, which the SDK's
positional decoder needs (a peer that omits trailing nulls breaks it; FACTS.md).

Events are kept as their encoded sections, split around the message-annotations
section, so that delivering one to a consumer only encodes the annotations the service
adds (``x-opt-sequence-number``, ``x-opt-offset``, ``x-opt-enqueued-time``) and copies
the rest: a decode/re-encode of every event would cost several times more.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any, NamedTuple

from azure.eventhub._pyamqp import performatives as perf
from azure.eventhub._pyamqp._decode import _DECODE_BY_CONSTRUCTOR, decode_frame, decode_payload
from azure.eventhub._pyamqp._encode import encode_frame, encode_payload, encode_value
from azure.eventhub._pyamqp.message import Message, Properties
from azure.eventhub._pyamqp.types import TYPE, VALUE, AMQPTypes

__all__ = [
    "AMQP_HEADER",
    "BATCH_FORMAT",
    "SASL_HEADER",
    "Frame",
    "StoredEvent",
    "annotated",
    "frame_bytes",
    "read_frame",
    "read_header",
    "reply_message",
    "split_event",
    "unpack_batch",
]

AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
SASL_HEADER = b"AMQP\x03\x01\x00\x00"
BATCH_FORMAT = 0x80013700  # the SDK's EventDataBatch: data sections that each hold an encoded message
_MESSAGE_ANNOTATIONS = 0x72
_PARTITION_KEY = b"x-opt-partition-key"
_SIZE = struct.Struct(">I")


class Frame(NamedTuple):
    """One frame read off the wire; ``fields`` is positional, as the SDK's decoder gives them."""

    kind: int  # 0 AMQP, 1 SASL
    channel: int
    performative: int | None  # descriptor code (0x10 open ... 0x18 close); None for an empty (heartbeat) frame
    fields: list[Any]


async def read_header(reader: asyncio.StreamReader) -> bytes:
    return await reader.readexactly(8)


async def read_frame(reader: asyncio.StreamReader, max_size: int) -> Frame:
    """The next frame; a frame over ``max_size`` is a protocol error (the caller closes)."""
    head = await reader.readexactly(8)
    size = _SIZE.unpack_from(head)[0]
    if size < 8 or size > max_size:
        raise ValueError(f"frame of {size} bytes is outside 8..{max_size}")
    doff, kind, channel = head[4], head[5], struct.unpack_from(">H", head, 6)[0]
    body = await reader.readexactly(size - 8) if size > 8 else b""
    body = body[doff * 4 - 8 :]
    if not body:
        return Frame(kind, channel, None, [])
    performative, fields = decode_frame(memoryview(body))
    return Frame(kind, channel, performative, fields)


def frame_bytes(channel: int, performative: Any, kind: bytes = b"\x00") -> bytes:
    """A whole frame: every field of ``performative`` written, nulls included."""
    header, body = encode_frame(performative, frame_type=kind)
    return header + struct.pack(">H", channel) + (body or b"")


# ---- messages ----------------------------------------------------------------------


class StoredEvent(NamedTuple):
    """An event as a partition keeps it: its sections minus the message annotations."""

    head: bytes  # the header section, if any (it precedes the annotations on the wire)
    tail: bytes  # properties, application properties, body, footer
    annotations: dict[bytes, Any]  # what the sender put there (a partition key, typically)
    size: int  # bytes as received: what limits and offsets count


def _sections(encoded: bytes | memoryview) -> list[tuple[int, int, int]]:
    """(descriptor, start, end) of each top-level section of an encoded message."""
    view = memoryview(encoded)
    out, pos, total = [], 0, len(view)
    while pos < total:
        if view[pos] != 0x00:
            raise ValueError(f"message section at byte {pos} is not a described type")
        rest, descriptor = _DECODE_BY_CONSTRUCTOR[view[pos + 1]](view[pos + 2 :])
        rest, _ = _DECODE_BY_CONSTRUCTOR[rest[0]](rest[1:])
        end = total - len(rest)
        out.append((descriptor, pos, end))
        pos = end
    return out


def split_event(encoded: bytes | memoryview) -> StoredEvent:
    """``encoded`` (one AMQP message) cut around its message-annotations section."""
    data = bytes(encoded)
    head, tail = bytearray(), bytearray()
    annotations: dict[bytes, Any] = {}
    for descriptor, start, end in _sections(data):
        if descriptor == _MESSAGE_ANNOTATIONS:
            annotations = _DECODE_BY_CONSTRUCTOR[data[start + 3]](memoryview(data)[start + 4 : end])[1] or {}
        elif descriptor == 0x70:
            head += data[start:end]
        else:
            tail += data[start:end]
    return StoredEvent(bytes(head), bytes(tail), annotations, len(data))


def unpack_batch(encoded: bytes | memoryview) -> tuple[list[StoredEvent], dict[bytes, Any]]:
    """The inner events of a 0x80013700 batch and the batch's own annotations."""
    outer = decode_payload(memoryview(bytes(encoded)))
    annotations: dict[bytes, Any] = dict(outer.message_annotations or {})  # type: ignore[arg-type]
    return [split_event(bytes(d)) for d in (outer.data or [])], annotations


def partition_key(event: StoredEvent) -> str | None:
    key = event.annotations.get(_PARTITION_KEY)
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else key


def annotated(event: StoredEvent, sequence: int, offset: int, enqueued_ms: int) -> bytes:
    """The event as a consumer receives it: with the service's ``x-opt-*`` annotations."""
    entries: list[tuple[Any, Any]] = []
    for key, value in event.annotations.items():
        if key == _PARTITION_KEY:
            value = {
                TYPE: AMQPTypes.string,
                VALUE: value.decode("utf-8", "replace") if isinstance(value, bytes) else value,
            }
        entries.append(({TYPE: AMQPTypes.symbol, VALUE: key}, value))
    entries += [
        ({TYPE: AMQPTypes.symbol, VALUE: b"x-opt-sequence-number"}, {TYPE: AMQPTypes.long, VALUE: sequence}),
        ({TYPE: AMQPTypes.symbol, VALUE: b"x-opt-offset"}, {TYPE: AMQPTypes.string, VALUE: str(offset)}),
        ({TYPE: AMQPTypes.symbol, VALUE: b"x-opt-enqueued-time"}, {TYPE: AMQPTypes.timestamp, VALUE: enqueued_ms}),
    ]
    section = bytearray()
    encode_value(
        section,
        {
            TYPE: AMQPTypes.described,
            VALUE: ({TYPE: AMQPTypes.ulong, VALUE: _MESSAGE_ANNOTATIONS}, {TYPE: AMQPTypes.map, VALUE: entries}),
        },
    )
    return event.head + bytes(section) + event.tail


def reply_message(correlation_id: Any, status: int, description: str, value: Any = None) -> bytes:
    """A management/CBS response: status in application properties, as the SDK reads it."""
    message = Message(
        properties=Properties(correlation_id=correlation_id),
        application_properties={"status-code": {TYPE: AMQPTypes.int, VALUE: status}, "status-description": description},
        value=value,
    )
    return bytes(encode_payload(bytearray(), message))


__all__ += ["partition_key", "perf"]
