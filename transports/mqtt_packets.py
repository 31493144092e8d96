"""MQTT 3.1.1 and 5.0 packets: the subset a publisher and a subscriber at QoS 0 or 1 need.

Building: ``connect``, ``subscribe``, ``publish`` (one PUBLISH, its bytes ready to write).
Reading: ``split`` cuts a buffer into whole packets; ``properties`` reads an MQTT 5
property list; ``reason`` names a refusal. Everything else about a session (packet ids,
waiting for acknowledgements, keep-alive) is the connection's, in ``mqtt.py``.

    >>> publish(0, 5, b"devices/d1/telemetry", b"\\x01", False)
    b'0\\x17\\x00\\x14devices/d1/telemetry\\x01'
    >>> list(split(b"\\x40\\x02\\x00\\x07\\xd0", 0))
    [(64, 2, 4)]
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = [
    "CONNACK",
    "DISCONNECT",
    "DISCONNECT_PACKET",
    "PINGREQ",
    "PINGRESP",
    "PUBACK",
    "PUBLISH",
    "SUBACK",
    "connect",
    "properties",
    "publish",
    "reason",
    "split",
    "subscribe",
]

# packet types (the high nibble of the first byte)
CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP, DISCONNECT = 2, 3, 4, 9, 13, 14
PINGREQ = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # MQTT 5 reads a missing reason code as 0, normal disconnection

# MQTT 5 property identifiers -> size of their integer value; the others are strings or binary
# (two-byte length first), a pair of strings (0x26) or a variable byte integer (0x0B)
_INTEGER = {
    **dict.fromkeys((0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A), 1),
    **dict.fromkeys((0x13, 0x21, 0x22, 0x23), 2),
    **dict.fromkeys((0x02, 0x11, 0x18, 0x27), 4),
}
RECEIVE_MAXIMUM, SERVER_KEEP_ALIVE, MAXIMUM_QOS = 0x21, 0x13, 0x24

_CONNACK_3 = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}
_REASONS_5 = {
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x93: "receive maximum exceeded",
    0x95: "packet too large",
    0x96: "message rate too high",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA2: "wildcard subscriptions not supported",
}


def reason(code: int, version5: bool) -> str:
    """``reason(0x87, True) == 'not authorized (0x87)'``; MQTT 3.1.1 CONNACK codes by their names too."""
    name = (_REASONS_5 if version5 else _CONNACK_3).get(code, "refused")
    return f"{name} (0x{code:02x})"


def _length(n: int) -> bytes:
    """A variable byte integer: seven bits a byte, lowest first."""
    if n < 128:
        return bytes((n,))
    out = bytearray()
    while n:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | 0x80 if n else digit)
    return bytes(out)


def _string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return len(data).to_bytes(2, "big") + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _length(len(body)) + body


def connect(client_id: str, version5: bool, keepalive_s: int, username: str | None, password: str | None) -> bytes:
    """CONNECT with a clean session (MQTT 5: clean start, no properties)."""
    flags, payload = 0x02, _string(client_id)
    if username is not None:
        flags, payload = flags | 0x80, payload + _string(username)
        if password is not None:
            flags, payload = flags | 0x40, payload + _string(password)
    header = _string("MQTT") + bytes((5 if version5 else 4, flags)) + keepalive_s.to_bytes(2, "big")
    return _packet(0x10, header + (b"\x00" if version5 else b"") + payload)


def subscribe(packet_id: int, topic_filter: str, qos: int, version5: bool) -> bytes:
    body = packet_id.to_bytes(2, "big") + (b"\x00" if version5 else b"") + _string(topic_filter) + bytes((qos,))
    return _packet(0x82, body)


def publish(qos: int, packet_id: int, topic: bytes, payload: bytes, version5: bool) -> bytes:
    """One PUBLISH (``packet_id`` is used at QoS 1 only). The hot path: one join, no object per field."""
    variable = len(topic).to_bytes(2, "big") + topic
    if qos:
        variable += packet_id.to_bytes(2, "big")
    if version5:
        variable += b"\x00"  # no properties
    return b"".join((b"\x32" if qos else b"\x30", _length(len(variable) + len(payload)), variable, payload))


def split(buffer: bytes, start: int) -> Iterator[tuple[int, int, int]]:
    """``(first byte, body start, body end)`` of each whole packet in ``buffer[start:]``; stops at a
    partial one (the caller keeps ``buffer[last end:]`` for the next read)."""
    i, n = start, len(buffer)
    while n - i >= 2:
        length, j = buffer[i + 1], i + 2
        if length & 0x80:  # a remaining length of more than one byte
            length, shift = length & 0x7F, 7
            while True:
                if j >= n:
                    return
                digit = buffer[j]
                j += 1
                length |= (digit & 0x7F) << shift
                if not digit & 0x80:
                    break
                shift += 7
        if j + length > n:
            return
        yield buffer[i], j, j + length
        i = j + length


def properties(data: bytes, i: int) -> tuple[dict[int, int], int]:
    """The MQTT 5 property list at ``data[i:]``: (integer properties by identifier, index past the list).
    String, binary and pair properties are skipped."""
    length, shift = 0, 0
    while True:
        digit = data[i]
        i += 1
        length |= (digit & 0x7F) << shift
        if not digit & 0x80:
            break
        shift += 7
    end, found = i + length, {}
    while i < end:
        identifier = data[i]
        i += 1
        size = _INTEGER.get(identifier)
        if size is not None:
            found[identifier] = int.from_bytes(data[i : i + size], "big")
            i += size
        elif identifier == 0x0B:  # subscription identifier: a variable byte integer
            while data[i] & 0x80:
                i += 1
            i += 1
        else:
            for _ in range(2 if identifier == 0x26 else 1):
                i += 2 + int.from_bytes(data[i : i + 2], "big")
    return found, end
