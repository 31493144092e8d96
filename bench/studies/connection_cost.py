"""What a device's connection costs on its own, measured with real connections: the README table.

Two ways a device can reach the broker, per transport variant (each against its embedded server,
started through ``Deployment``):

- **connected**: every device holds its own connection open and sends one reading a minute; the
  connection pays its keep-alive (MQTT PINGREQ/PINGRESP after ``keepalive_s`` = 60 s without a
  packet sent, AMQP empty frames within the broker's idle time-out -- RabbitMQ asks for one every
  60 s --, TCP keep-alive: off unless a socket asks, then first after 2 h idle on Linux) and any
  reconnect the server forces (an HTTP server closes an idle keep-alive connection);
- **sleeping**: the device wakes for each reading: TCP + TLS + the protocol's connect, one
  reading, the protocol's goodbye, close.

Bytes are the kernel's own counters of each connection (``iotbench.pipeline.sockets``): payload
octets each way plus the TCP/IP headers of every segment (SYN, pure ACKs, FIN of the server).
The client's own FIN and the last ACK are not counted (``sockets.held``): ~2 x 52 B per
connection. A reading's bytes are measured on one warm connection (20 readings, 0.2 s apart);
what a connected device sends beyond its readings is its keep-alive, and each connection opened
during the window (a forced reconnect) counts as a handshake carrying one reading.

Run: ``python -m iotbench.studies.connection_cost [--devices 1000 --minutes 3 --transports mqtt,amqp]``
(all variants run at once, each with its own server: about ``minutes`` + 2 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iotbench.pipeline.deploy import Deployment
from iotbench.pipeline.sockets import closed_by_peer, held, tcp_counters
from iotbench.transports import get_transport
from iotbench.transports.base import Sender

__all__ = ["VARIANTS", "Variant", "measure"]

MONTH_S = 30 * 86_400
READING = b'{"DeviceId":"b0000-a001-s1","TimeObserved":"2026-11-29T12:00:00Z","Temperature":21.5}'.ljust(100)
SEND_TIMEOUT_S = 10.0
OPEN_AT_ONCE = 25  # connects in flight per variant: 1,000 TLS handshakes without a listen backlog overflow
SETTLE_S = 1.0  # after the last open or send: its ACKs arrive
CLOSE_SETTLE_S = 0.3  # after a close: the server's answer to the goodbye
CALIBRATION_READINGS = 20
WATCH_S = 5.0  # how often new connections are looked for: each look dups every descriptor of the process


@dataclass(frozen=True)
class Variant:
    label: str
    transport: str
    options: dict[str, Any] = field(default_factory=dict)
    max_devices: int | None = None  # a client too heavy for 1,000 connections in one process


VARIANTS = (
    Variant("MQTT 3.1.1 QoS 1", "mqtt", {"qos": 1}),
    Variant("MQTT 3.1.1 QoS 1 + TLS", "mqtt", {"qos": 1, "tls": True}),
    Variant("AMQP 1.0", "amqp", {}),
    Variant("AMQP 1.0 + TLS", "amqp", {"tls": True}),
    Variant("HTTP/1.1 keep-alive + TLS", "http", {"mode": "keep-alive", "tls": True}),
    Variant("Kafka acks=1", "kafka", {"acks": 1}, max_devices=100),
)


class _Connections:
    """This process's TCP connections to one server's ports, held (``sockets.held``) once seen."""

    def __init__(self, ports: set[int]) -> None:
        self.ports = ports
        self.seen: dict[tuple[Any, ...], socket.socket] = {}

    def collect(self) -> list[socket.socket]:
        """Hold the connections not seen before; return them."""
        new = []
        for sock in held():
            try:
                key, port = sock.getsockname(), sock.getpeername()[1]
            except OSError:
                port = None
            if port in self.ports and key not in self.seen:
                self.seen[key] = sock
                new.append(sock)
            else:
                sock.close()
        return new

    def release(self) -> None:
        for sock in self.seen.values():
            sock.close()
        self.seen.clear()


async def _send(sender: Sender, key: str) -> bool:
    try:
        async with asyncio.timeout(SEND_TIMEOUT_S):
            await sender.send(key, READING)
        return True
    except Exception:  # noqa: BLE001 - a failed send is counted, the study goes on
        return False


async def _close(sender: Sender) -> None:
    try:
        async with asyncio.timeout(SEND_TIMEOUT_S):
            await sender.close()
    except Exception:  # noqa: BLE001 - a close that hangs or fails: its bytes are counted anyway
        pass


async def _reading_bytes(transport: Any, ports: set[int], index: int) -> float:
    """One reading on a warm connection: its octets, headers and acknowledgements, both ways."""
    conns = _Connections(ports)
    sender = await transport.open_sender(index)
    try:
        await _send(sender, "calibration")
        await asyncio.sleep(SETTLE_S)
        socks = conns.collect()
        before = tcp_counters(socks)
        for _ in range(CALIBRATION_READINGS):
            await _send(sender, "calibration")
            await asyncio.sleep(0.2)
        return tcp_counters(socks).minus(before).total / CALIBRATION_READINGS
    finally:
        await _close(sender)
        conns.release()


async def _sleeping(transport: Any, ports: set[int], readings: int, first_index: int) -> float:
    """Median bytes of a whole connection's life that carries one reading."""
    sizes = []
    for i in range(readings):
        conns = _Connections(ports)
        conns.collect()  # connections already open are not this reading's
        sender = await transport.open_sender(first_index + i)
        ok = await _send(sender, f"sleeper{i}")
        socks = conns.collect()
        await _close(sender)
        await asyncio.sleep(CLOSE_SETTLE_S)
        if ok:
            sizes.append(tcp_counters(socks).total)
        conns.release()
    return statistics.median(sizes) if sizes else float("nan")


async def _open_all(transport: Any, devices: int, first: int = 0) -> list[Sender]:
    gate = asyncio.Semaphore(OPEN_AT_ONCE)

    async def one(k: int) -> Sender:
        async with gate:
            sender: Sender = await transport.open_sender(k)
            await _send(sender, f"d{k:06d}")  # a client that connects lazily connects now
            return sender

    return list(await asyncio.gather(*(one(k) for k in range(first, first + devices))))


async def _watch(conns: _Connections, every_s: float) -> None:
    """Hold each new connection as it appears: one the server closes again is still counted."""
    while True:
        await asyncio.sleep(every_s)
        conns.collect()


async def _connected(transport: Any, ports: set[int], devices: int, idle: int, window_s: float) -> dict[str, Any]:
    """``devices`` connections, one reading a minute each (spread over the minute), and ``idle``
    more that send nothing, for ``window_s``: the readers' and the idle connections' bytes."""
    readers, quiet = _Connections(ports), _Connections(ports)
    senders = await _open_all(transport, devices)
    await asyncio.sleep(SETTLE_S)
    initial = readers.collect()
    idlers = await _open_all(transport, idle, first=devices + 100)
    watch = None
    try:
        await asyncio.sleep(SETTLE_S)
        quiet.seen.update(readers.seen)  # the idle connections are the ones not seen yet
        idle_socks = quiet.collect()
        readers.seen.update(quiet.seen)  # the watch below looks for reconnects of the readers only
        start, idle_start = tcp_counters(initial), tcp_counters(idle_socks)
        watch = asyncio.ensure_future(_watch(readers, WATCH_S))
        loop = asyncio.get_running_loop()
        t0, tasks = loop.time(), []
        due = sorted((60.0 * (m + k / devices), k) for m in range(int(window_s // 60)) for k in range(devices))
        for at, k in due:
            await asyncio.sleep(max(0.0, t0 + at - loop.time()))
            tasks.append(asyncio.ensure_future(_send(senders[k], f"d{k:06d}")))
        await asyncio.sleep(max(0.0, t0 + window_s - loop.time()))
        sent = sum(await asyncio.gather(*tasks))
        watch.cancel()
        readers.collect()
        reopened = [sock for sock in readers.seen.values() if sock not in initial and sock not in idle_socks]
        kept = tcp_counters(initial).minus(start)
        again = tcp_counters(reopened).total
        closed = sum(closed_by_peer(sock) for sock in idle_socks)
        return {"bytes": kept.total + again, "sends": len(tasks), "sent": sent, "reconnects": len(reopened),
                "reconnect_bytes": again, "connections": len(initial), "window_s": window_s,
                "idle_connections": len(idle_socks), "idle_closed_by_server": closed,
                "idle_bytes": tcp_counters(idle_socks).minus(idle_start).total}  # fmt: skip
    finally:
        if watch is not None:
            watch.cancel()
        await asyncio.gather(*(_close(s) for s in senders + idlers))
        readers.release()  # closing a socket twice (both hold the idle ones) is harmless
        quiet.release()


async def measure(variant: Variant, devices: int, minutes: float, folder: Path, sleepers: int = 20) -> dict[str, Any]:
    """One variant's rows (connected, sleeping): bytes per device per month and their parts."""
    devices = min(devices, variant.max_devices or devices)
    deployment = Deployment(get_transport(variant.transport)(**variant.options), folder)
    transport = await deployment.start()
    try:
        ports = {endpoint.port for endpoint in deployment.endpoints.values()}
        per_reading = await _reading_bytes(transport, ports, devices + 1)
        idle = max(5, devices // 10)
        held_open = await _connected(transport, ports, devices, idle, minutes * 60.0)
        asleep = await _sleeping(transport, ports, sleepers, devices + idle + 200)
    finally:
        await deployment.stop()
    month = MONTH_S / held_open["window_s"]
    readings_month = MONTH_S / 60.0 * per_reading  # one a minute
    handshake_c = (held_open["reconnect_bytes"] - held_open["reconnects"] * per_reading) * month / devices
    keepalive_c = (held_open["bytes"] - held_open["sent"] * per_reading) * month / devices - handshake_c
    keepalive_i = held_open["idle_bytes"] * month / held_open["idle_connections"]
    handshake_s = (asleep - per_reading) * MONTH_S / 60.0
    return {
        "variant": variant.label,
        "transport": variant.transport,
        "options": variant.options,
        "reading_bytes": per_reading,
        "sleeping_connection_bytes": asleep,
        "connected_run": {**held_open, "devices": devices},
        "rows": [
            _row("connected", keepalive_c, handshake_c, readings_month, note=_connected_note(held_open)),
            _row("sleeping", 0.0, handshake_s, readings_month),
            _row("idle", keepalive_i, 0.0, 0.0, note=_idle_note(held_open)),
        ],
    }


def _row(mode: str, keepalive: float, handshake: float, readings: float, note: str = "") -> dict[str, Any]:
    mb = 1e6
    return {"mode": mode, "mb_month": (keepalive + handshake + readings) / mb, "keepalive_mb": keepalive / mb,
            "handshake_mb": handshake / mb, "readings_mb": readings / mb, "note": note}  # fmt: skip


def _idle_note(run: dict[str, Any]) -> str:
    closed, count = run["idle_closed_by_server"], run["idle_connections"]
    if closed:
        return f"{closed} of {count} idle connections closed by the server: its close, not a keep-alive"
    return ""


def _connected_note(run: dict[str, Any]) -> str:
    failed = run["sends"] - run["sent"]
    parts = [f"{run['reconnects']} reconnects"] if run["reconnects"] else []
    return ", ".join(parts + ([f"{failed} of {run['sends']} sends failed"] if failed else []))


def raise_fd_limit(needed: int) -> tuple[int, int]:
    """Raise the soft limit on open files up to the hard one (each connection is a descriptor here,
    and its broker -- a child process -- inherits the limit too); returns (soft, hard) now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        soft = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


async def _measure_all(variants: list[Variant], devices: int, minutes: float, out: Path) -> list[dict[str, Any]]:
    jobs = [measure(v, devices, minutes, out / f"server-{i}-{v.transport}") for i, v in enumerate(variants)]
    done = await asyncio.gather(*jobs, return_exceptions=True)
    results = []
    for variant, result in zip(variants, done, strict=True):
        if isinstance(result, BaseException):
            print(f"{variant.label}: failed: {type(result).__name__}: {result}", file=sys.stderr)
            results.append({"variant": variant.label, "error": f"{type(result).__name__}: {result}", "rows": []})
        else:
            results.append(result)
    return results


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| variant | mode | MB per device per month | keep-alive | handshakes | readings | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        for r in result["rows"]:
            lines.append(
                f"| {result['variant']} | {r['mode']} | {r['mb_month']:.2f} | {r['keepalive_mb']:.2f} "
                f"| {r['handshake_mb']:.2f} | {r['readings_mb']:.2f} | {r['note']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from iotbench.machine import machine_info

    parser = argparse.ArgumentParser(
        prog="python -m iotbench.studies.connection_cost", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--devices", type=int, default=1000, help="connections held open per variant")
    parser.add_argument("--minutes", type=float, default=3.0, help="how long they are held (whole minutes)")
    parser.add_argument("--transports", default="", help="comma-separated transports (default: every variant)")
    parser.add_argument("--out", type=Path, default=Path("reports/connection-cost"))
    args = parser.parse_args(argv)
    names = [n for n in args.transports.split(",") if n]
    variants = [v for v in VARIANTS if not names or v.transport in names]
    limits = raise_fd_limit(4 * args.devices * len(variants) + 1024)
    started, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="iotbench-conncost-") as work:
        results = asyncio.run(_measure_all(variants, args.devices, args.minutes, Path(work)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10).stdout
    record = {"date": started, "commit": commit.strip(), "machine": machine_info(), "load_average": [load[0],
              os.getloadavg()[0]], "open_files_limit": limits, "devices": args.devices, "minutes": args.minutes,
              "reading_payload_bytes": len(READING), "results": results}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "connection_cost.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"{started}, commit {record['commit']}, load average {load[0]:.2f} -> {os.getloadavg()[0]:.2f}, "
          f"open files limit {limits[0]}; {args.devices} devices per variant for {args.minutes:g} min")  # fmt: skip
    print(table(results))


if __name__ == "__main__":
    main()
