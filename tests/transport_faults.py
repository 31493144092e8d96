"""Shared checks for the MQTT and AMQP transport tests: dead and silent endpoints, connections;
and a test transport with a known ceiling (``CappedTransport``)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from iotbench.model.spec import parse_spec
from iotbench.pipeline.runner import run_matrix
from iotbench.transports.inprocess import InProcessOptions, InProcessTransport
from iotbench.transports.options import option
from iotbench.transports.servers.process import LOOPBACK, free_port


@contextmanager
def silent_endpoint() -> Iterator[int]:
    """A port whose TCP handshake completes (kernel backlog) but that never says a byte."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        s.listen(16)
        yield s.getsockname()[1]


def dead_port() -> int:
    return free_port()


def run_with(transport: str, options: dict[str, Any], out: Path) -> list[Any]:
    """A tiny matrix: the transport's cells, then an in-process cell that must still run."""
    spec = parse_spec(
        {
            "codecs": ["json"],
            "transports": [transport, "inprocess"],
            "devices": 20,
            "interval_s": 1.0,
            "duration_s": 1.0,
            "warmup_s": 0.0,
            "drain_timeout_s": 2.0,
            "transport_options": {transport: options},
        }
    )
    return run_matrix(spec, out)


def established_to(port: int) -> int:
    """Client-side TCP connections to 127.0.0.1:port in ESTABLISHED state on this host."""
    count = 0
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def check_endpoint_from_environment(transport: str, server_file: str, tmp_path: Path, monkeypatch: Any) -> None:
    """IOTBENCH_<T>_URL names the broker when the spec does not; its password is saved nowhere."""
    port = dead_port()
    monkeypatch.setenv(f"IOTBENCH_{transport.upper()}_URL", f"{transport}://bob:s3cret@127.0.0.1:{port}")
    results = run_with(transport, {}, tmp_path)  # no url option
    assert results[0].status == "failed" and f"cannot connect to 127.0.0.1:{port}" in results[0].error
    saved = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file() and p.suffix in {".jsonl", ".json"})
    assert "s3cret" not in saved
    assert not list(tmp_path.rglob(server_file)), "no broker should have been started"


@dataclass(frozen=True)
class CappedOptions(InProcessOptions):
    transport: ClassVar[str] = "capped"
    sends_per_s: float = option(2000.0, "the most sends a connection makes per second", low=1.0, high=1e6)


class _CappedSender:
    """Each send waits for its slot, ``1 / sends_per_s`` after the previous one's: a broker that
    takes at most that many a second, however many are in flight (no burst credit when idle)."""

    def __init__(self, inner: Any, sends_per_s: float) -> None:
        self._inner, self._gap, self._next = inner, 1.0 / sends_per_s, 0.0

    async def send(self, key: str, payload: bytes) -> None:
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next)
        self._next = slot + self._gap
        if slot > now:
            await asyncio.sleep(slot - now)
        await self._inner.send(key, payload)

    async def close(self) -> None:
        await self._inner.close()


class CappedTransport(InProcessTransport):
    """The in-process link with a ceiling: ``sends_per_s`` per connection, a rate search's known answer.

    Register it as ``TRANSPORTS.register("capped", "transport_faults:CappedTransport")``: the sides
    import it by name like any registered transport.
    """

    name: ClassVar[str] = "capped"
    Options: ClassVar[type[CappedOptions]] = CappedOptions

    def __init__(self, **options: Any) -> None:
        self.options = CappedOptions(**options)
        self._path = None

    async def open_sender(self, index: int) -> Any:
        return _CappedSender(await super().open_sender(index), self.options.sends_per_s)
