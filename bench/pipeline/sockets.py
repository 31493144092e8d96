"""Bytes on the wire, from the kernel's own counters of a process's TCP connections.

Whatever client library a transport uses (paho-style asyncio, proton's C engine, aiokafka, the
Event Hubs SDK, httptools), its connections are sockets of the process it runs in. A side reads
``TCP_INFO`` (``getsockopt``, Linux) of every connected TCP socket it holds -- through a duplicate
of the descriptor, so the library's socket is not touched -- and sums the RFC 4898 counters:

- ``bytes_out``: octets the connection sent (``tcpi_bytes_sent``, retransmissions included: a
  cellular link bills them too), ``bytes_in``: octets received (``tcpi_bytes_received``);
- ``header_out``/``header_in``: TCP/IP headers of every segment each way (``tcpi_segs_out`` /
  ``tcpi_segs_in``: data segments, pure acknowledgements, SYN and FIN alike), at this socket's
  header size -- 20 B IPv4 (40 IPv6) + 20 B TCP + 12 B when timestamps were negotiated
  (``tcpi_options``); SYNs carry 8 B more options, left out (one per connection);
- ``retrans_out``: of ``bytes_out``, retransmitted octets.

A socket closed between two readings takes its counters with it: ``held()`` keeps duplicates of
the descriptors open while the senders close, so the protocol's goodbye (MQTT DISCONNECT, AMQP
close, TLS close_notify) is still counted, and only TCP's own FIN exchange is not.

>>> before = tcp_counters()                 # doctest: +SKIP
>>> ...                                     # the connections do their work
>>> used = tcp_counters().minus(before)     # bytes and headers each way, over that span
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import asdict, dataclass, fields

__all__ = ["TcpCounters", "closed_by_peer", "held", "tcp_counters"]

_TCP_INFO_LEN = 232  # through tcpi_bytes_retrans (Linux 4.19+)
_OPT_TIMESTAMPS = 1  # TCPI_OPT_TIMESTAMPS in tcpi_options
_TCP_HEADER = 20
_TIMESTAMPS = 12  # the option (10 B) padded to a 4-byte boundary
_IP_HEADER = {socket.AF_INET: 20, socket.AF_INET6: 40}
_ESTABLISHED = 1  # tcpi_state


@dataclass(frozen=True)
class TcpCounters:
    """Sums over connections; every field adds, so several processes' counters merge by ``plus``."""

    connections: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    header_out: int = 0
    header_in: int = 0
    segments_out: int = 0
    segments_in: int = 0
    retrans_out: int = 0

    @property
    def up(self) -> int:
        """Everything this side sent: octets and TCP/IP headers."""
        return self.bytes_out + self.header_out

    @property
    def down(self) -> int:
        """Everything this side received: octets and TCP/IP headers."""
        return self.bytes_in + self.header_in

    @property
    def total(self) -> int:
        return self.up + self.down

    def plus(self, other: TcpCounters) -> TcpCounters:
        return TcpCounters(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def minus(self, other: TcpCounters) -> TcpCounters:
        """What happened since ``other`` (connections: those counted now)."""
        values = [getattr(self, f.name) - getattr(other, f.name) for f in fields(self)]
        values[0] = self.connections
        return TcpCounters(*values)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> TcpCounters:
        return cls(**data)


def _read(sock: socket.socket, connected: bool = True) -> TcpCounters | None:
    """One TCP socket's counters, or None for anything else (Unix sockets, UDP, listeners, and --
    ``connected`` -- a socket that is not connected now: a held one is read after its peer closed)."""
    if sock.type != socket.SOCK_STREAM or sock.family not in _IP_HEADER:
        return None
    try:
        if connected:
            sock.getpeername()
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except OSError:
        return None  # not connected (a listener, a socket still connecting)
    if len(raw) < _TCP_INFO_LEN:
        return None  # a kernel without the RFC 4898 counters
    header = _IP_HEADER[sock.family] + _TCP_HEADER + (_TIMESTAMPS if raw[5] & _OPT_TIMESTAMPS else 0)
    received = struct.unpack_from("Q", raw, 128)[0]
    segs_out, segs_in = struct.unpack_from("II", raw, 136)
    sent, retrans = struct.unpack_from("QQ", raw, 200)
    return TcpCounters(1, sent, received, segs_out * header, segs_in * header, segs_out, segs_in, retrans)


def closed_by_peer(sock: socket.socket) -> bool:
    """The connection left ESTABLISHED (``tcpi_state``): the other end closed it (or it reset)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != _ESTABLISHED


def _socket_fds() -> list[int]:
    fds = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                fds.append(int(name))
        except OSError:
            continue  # closed while listing (the listing's own descriptor, too)
    return fds


def tcp_counters(sockets: list[socket.socket] | None = None) -> TcpCounters:
    """The sum over this process's connected TCP sockets (or over ``sockets``, e.g. ``held()``'s)."""
    total = TcpCounters()
    if sockets is not None:
        for sock in sockets:
            counters = _read(sock, connected=False)  # held: still counted once the peer has closed
            if counters is not None:
                total = total.plus(counters)
        return total
    for fd in _socket_fds():
        try:
            dup = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        with dup:  # closes the duplicate only: the library's descriptor keeps the connection
            counters = _read(dup)
        if counters is not None:
            total = total.plus(counters)
    return total


def held() -> list[socket.socket]:
    """Duplicates of this process's connected TCP sockets: they keep each connection (and its
    counters) alive after its owner closes it, until they are closed themselves."""
    out = []
    for fd in _socket_fds():
        try:
            dup = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        if _read(dup) is None:
            dup.close()
        else:
            out.append(dup)
    return out
