"""What a cell's events cost, per event: bytes on the wire by layer, CPU on each side, memory.

From the readings the sides and the runner took (``iotbench.pipeline.usage``): the sending
side's at its connections' opening, the measured window's start and end, before and after
closing; the receiving side's at the window's edges; the servers' CPU at the window's edges.

Wire bytes are the sending side's connections -- the device link -- per event sent in the window:

- ``up`` (device -> server): ``payload`` (the codec's bytes, after compression), ``framing`` (what
  the connection carried beyond them: the protocol's headers and acknowledgements, and TLS's
  records in a TLS cell -- the same cell without TLS tells the two apart), ``tcp_ip`` (the TCP
  and IP headers of every segment), ``total``, and ``segments``;
- ``down`` (server -> device): the same without a payload;
- ``setup``: per connection, what it exchanged before the first reading (TCP's handshake, TLS's,
  the protocol's connect or attach), and that spread over every event the cell sent;
- ``teardown``: the same for closing (the protocol's goodbye; TCP's FIN exchange is not counted).
"""

from __future__ import annotations

from typing import Any

from iotbench.pipeline.usage import Reading

__all__ = ["cpu_us_per_event", "datagram_wire_per_event", "peak_rss_mb", "wire_per_event"]

UDP_IP = 28  # IPv4 20 B + UDP 8 B per datagram


def _r(value: float) -> float:
    return round(value, 2)


def _window(usage: dict[str, Any]) -> Reading | None:
    if not usage or "start" not in usage:
        return None
    return Reading.from_dict(usage["end"]).minus(Reading.from_dict(usage["start"]))


def _life(bytes_up: float, bytes_down: float, connections: int, events_sent: int) -> dict[str, Any]:
    per = max(connections, 1)
    return {
        "connections": connections,
        "up_bytes": _r(bytes_up / per),
        "down_bytes": _r(bytes_down / per),
        "per_event": _r((bytes_up + bytes_down) / events_sent) if events_sent else None,
    }


def wire_per_event(send_usage: dict[str, Any], events_sent: int) -> dict[str, Any] | None:
    """The ``wire`` results key, or None when the sending side held no TCP connection (in-process, UDP)."""
    window = _window(send_usage)
    if window is None or window.events <= 0 or window.tcp.connections == 0:
        return None
    tcp, n = window.tcp, window.events
    up = {
        "payload": _r(window.payload_bytes / n),
        "framing": _r((tcp.bytes_out - window.payload_bytes) / n),
        "tcp_ip": _r(tcp.header_out / n),
        "total": _r(tcp.up / n),
        "segments": round(tcp.segments_out / n, 4),
    }
    down = {
        "framing": _r(tcp.bytes_in / n),
        "tcp_ip": _r(tcp.header_in / n),
        "total": _r(tcp.down / n),
        "segments": round(tcp.segments_in / n, 4),
    }
    opened = Reading.from_dict(send_usage["opened"]).tcp
    closing = Reading.from_dict(send_usage["closing"]).tcp
    gone = Reading.from_dict(send_usage["closed"]).tcp.minus(closing)
    return {
        "source": "tcp_info",
        "events": n,
        "connections": tcp.connections,
        "retransmitted_bytes": tcp.retrans_out,
        "up": up,
        "down": down,
        "setup": _life(opened.up, opened.down, opened.connections, events_sent),  # fmt: skip
        "teardown": _life(gone.up, gone.down, closing.connections, events_sent),  # fmt: skip
    }


def datagram_wire_per_event(
    counters: dict[str, int], payload_bytes: float | None, events_sent: int
) -> dict[str, Any] | None:
    """The ``wire`` key of a UDP transport from its server's datagram counts (``server_udp_*``: the
    kernel keeps no per-socket byte counters for UDP), over the whole cell; None without them."""
    if "server_udp_bytes_up" not in counters or not events_sent or payload_bytes is None:
        return None
    n = events_sent
    up_bytes, down_bytes = counters["server_udp_bytes_up"], counters["server_udp_bytes_down"]
    up_datagrams, down_datagrams = counters["server_udp_datagrams_up"], counters["server_udp_datagrams_down"]
    return {
        "source": "datagrams",
        "events": n,
        "connections": 0,
        "retransmitted_bytes": None,
        "up": {
            "payload": _r(payload_bytes),
            "framing": _r(up_bytes / n - payload_bytes),
            "tcp_ip": _r(up_datagrams * UDP_IP / n),  # here UDP/IP
            "total": _r((up_bytes + up_datagrams * UDP_IP) / n),
            "segments": round(up_datagrams / n, 4),
        },
        "down": {
            "framing": _r(down_bytes / n),
            "tcp_ip": _r(down_datagrams * UDP_IP / n),
            "total": _r((down_bytes + down_datagrams * UDP_IP) / n),
            "segments": round(down_datagrams / n, 4),
        },
        "setup": _life(0, 0, 0, n),
        "teardown": _life(0, 0, 0, n),
    }


def cpu_us_per_event(
    send_usage: dict[str, Any], receive_usage: dict[str, Any], server_cpu_s: dict[str, float]
) -> dict[str, Any]:
    """CPU microseconds per event over the window: the sending processes (``client``), the servers
    (``server``, and ``servers`` by name) per event sent, the receiving process (``consumer``) per
    event it received."""
    sent, received = _window(send_usage), _window(receive_usage)
    per_sent = 1e6 / sent.events if sent is not None and sent.events > 0 else None
    out: dict[str, Any] = {
        "client": _r(sent.cpu_s * per_sent) if sent is not None and per_sent else None,
        "server": _r(sum(server_cpu_s.values()) * per_sent) if per_sent and server_cpu_s else None,
        "consumer": _r(received.cpu_s * 1e6 / received.events)
        if received is not None and received.events > 0
        else None,
    }
    if len(server_cpu_s) > 1 and per_sent:
        out["servers"] = {name: _r(cpu * per_sent) for name, cpu in server_cpu_s.items()}
    return out


def peak_rss_mb(
    send_usage: dict[str, Any], receive_usage: dict[str, Any], server_peaks: dict[str, float]
) -> dict[str, Any]:
    """Peak resident memory of each side, MB: the sending processes together, the servers together
    (``servers`` by name), the receiving process."""
    out: dict[str, Any] = {
        "client": round(send_usage["peak_rss_mb"], 1) if send_usage else None,
        "server": round(sum(server_peaks.values()), 1) if server_peaks else None,
        "consumer": round(receive_usage["peak_rss_mb"], 1) if receive_usage else None,
    }
    if len(server_peaks) > 1:
        out["servers"] = {name: round(mb, 1) for name, mb in server_peaks.items()}
    return out
