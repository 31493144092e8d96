"""What the project's gateways and their clients share: the event stream's framing, the REST batch form.

The ingest gateway (``emulators.ingest_gateway``), the CoAP gateway and the local Event Hubs
endpoint hand every event they accept to one long-lived ``GET /$stream`` response (or a TCP
stream), length-prefixed; the receivers of the ``http``, ``coap`` and ``eventhubs-https``
transports read it with ``decode_frames``. Both sides import it from here, so a client never
imports a server.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

__all__ = [
    "BATCH_CONTENT_TYPE",
    "COAP_HELLO",
    "COAP_RESOURCE",
    "MAX_PUBLICATION",
    "STREAM_PATH",
    "Event",
    "decode_frames",
    "encode_frame",
]

BATCH_CONTENT_TYPE = "application/vnd.microsoft.servicebus.json"
STREAM_PATH = "/$stream"
MAX_PUBLICATION = 1024 * 1024  # Event Hubs Standard: 1 MB per publication
FRAME_HEADER = struct.Struct(">IH")  # body length, properties length (JSON), then properties, body
COAP_RESOURCE = "telemetry"  # the CoAP gateway's resource: coap://host:port/telemetry?d=DEVICE
COAP_HELLO = b"IBS1"  # the CoAP gateway's stream starts with it: a consumer knows at once it reached a gateway
_encode_json = msgspec.json.encode


@dataclass(frozen=True)
class Event:
    """One event as Event Hubs would store it: the body bytes and its user properties."""

    hub: str
    body: bytes
    properties: Mapping[str, Any] = field(default_factory=dict)
    publisher: str | None = None


def encode_frame(event: Event) -> bytes:
    """The stream's framing of one event: ``>IH`` lengths, properties JSON, body."""
    props = _encode_json(dict(event.properties)) if event.properties else b""
    return FRAME_HEADER.pack(len(event.body), len(props)) + props + event.body


def decode_frames(buffer: bytearray) -> list[tuple[bytes, dict[str, Any]]]:
    """Take every complete frame off the front of ``buffer`` (a partial one stays there)."""
    out, pos, end, head = [], 0, len(buffer), FRAME_HEADER.size
    view = memoryview(buffer)
    while end - pos >= head:
        body_len, props_len = FRAME_HEADER.unpack_from(buffer, pos)
        stop = pos + head + props_len + body_len
        if stop > end:
            break
        start = pos + head
        props = msgspec.json.decode(view[start : start + props_len]) if props_len else {}
        out.append((bytes(view[start + props_len : stop]), props))
        pos = stop
    view.release()
    del buffer[:pos]
    return out
