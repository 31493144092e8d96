"""The reference transport: the harness alone, its two sides joined by a local socket.

It is what every other transport is compared with (the cost of the harness itself) and
the test double of the suite. The sending and the receiving side of a cell run in
processes of their own, so the "broker" is the cheapest hop there is between them: a Unix
socket in Linux's abstract namespace (no file, no network stack). The receiving side
listens on it; each sender is one connection that writes length-prefixed payloads; ``send``
is acknowledged once the payload is handed to the socket (as MQTT QoS 0 is), and waits
while more than ``max_buffered_bytes`` are unsent: backpressure.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from iotbench.transports.base import Deliver, ReceiverDefaults, TransportDefaults, TransportError
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.options import TransportOptions, option
from iotbench.transports.servers.base import Server, ServerDefaults

__all__ = ["InProcessOptions", "InProcessTransport", "LocalSocket"]

FRAME = struct.Struct(">I")  # payload length; the payload follows


@dataclass(frozen=True)
class InProcessOptions(TransportOptions):
    transport: ClassVar[str] = "inprocess"

    max_buffered_bytes: int = option(
        4 * 1024 * 1024,
        "bytes a sender may have written that the receiving side has not read; send waits beyond",
        low=64 * 1024,
        high=1024 * 1024 * 1024,
        unit="bytes",
    )
    connect_timeout_s: float = option(10.0, "bound on a sender's connect", low=0.1, high=120.0, unit="s")


class LocalSocket(ServerDefaults):
    """Not a process: a fresh abstract-namespace socket name the receiving side will listen on."""

    name = "local-socket"

    def start(self, workdir: Path) -> Endpoint:
        return Endpoint("unix", "", 0, extras={"path": f"\0iotbench-{secrets.token_hex(8)}"})

    def stop(self) -> None:
        return None  # an abstract socket vanishes with the last process that holds it


class _Sender:
    """Frames go out joined: the sends of one loop pass are one write (one system call), not one each.

    At batch 1 a write per payload was a system call per event, and the receiving side woke per
    payload; joined, both sides pay per loop pass (measured in issue 10's in-process benchmark).
    """

    def __init__(self, writer: asyncio.StreamWriter, high_water: int) -> None:
        self._writer = writer
        self._transport = writer.transport
        self._high_water = high_water
        self._frames: list[bytes] = []
        self._pack = FRAME.pack

    async def send(self, key: str, payload: bytes) -> None:
        if self._transport.is_closing():
            raise TransportError("in-process link closed")
        frames = self._frames
        if not frames:
            asyncio.get_running_loop().call_soon(self._write)
        frames += (self._pack(len(payload)), payload)
        if self._transport.get_write_buffer_size() > self._high_water:
            self._write()
            await self._writer.drain()  # the receiving side is behind: wait, as a full broker would make us

    def _write(self) -> None:
        frames, self._frames = self._frames, []
        if frames and not self._transport.is_closing():
            self._transport.write(b"".join(frames))

    async def close(self) -> None:
        self._write()
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass


class _Link(asyncio.Protocol):
    """One sender's connection at the receiving side: frames out of the byte stream, in order."""

    def __init__(self, receiver: _Receiver) -> None:
        self._receiver = receiver
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        deliver, pos, end, head = self._receiver.deliver, 0, len(buffer), FRAME.size
        try:
            while end - pos >= head:
                (size,) = FRAME.unpack_from(buffer, pos)
                if end - pos - head < size:
                    break
                deliver(bytes(buffer[pos + head : pos + head + size]))
                pos += head + size
        except Exception as exc:  # noqa: BLE001 - a raising consumer fails the cell, it is not logged away
            self._receiver.error = f"deliver raised {type(exc).__name__}: {exc}"
            self._receiver.deliver = _discard
        del buffer[:pos]


async def _connect(path: str) -> asyncio.StreamWriter:
    """A stream to ``path``; the socket made here, as uvloop refuses an abstract-namespace path."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, path)
    except OSError:
        sock.close()
        raise
    _, writer = await asyncio.open_unix_connection(sock=sock)
    return writer


def _discard(payload: bytes) -> None:
    return None


class _Receiver(ReceiverDefaults):
    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver
        self.error: str | None = None
        self._server: asyncio.AbstractServer | None = None

    async def listen(self, path: str) -> _Receiver:
        loop = asyncio.get_running_loop()
        # the socket made here, not by the loop: uvloop refuses an abstract-namespace path
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self._server = await loop.create_unix_server(lambda: _Link(self), sock=sock)
        return self

    def failure(self) -> str | None:
        return self.error

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()


class InProcessTransport(TransportDefaults):
    """``InProcessTransport()``: the harness's two sides joined by a local socket."""

    name: ClassVar[str] = "inprocess"
    label: ClassVar[str] = "a local socket between the harness's two sides: the harness alone, the reference"
    Options: ClassVar[type[InProcessOptions]] = InProcessOptions

    def __init__(self, **options: Any) -> None:
        self.options = InProcessOptions(**options)
        self._path: str | None = None

    def servers(self) -> dict[str, Server]:
        return {"link": LocalSocket()}

    async def start(self, endpoints: Mapping[str, Endpoint]) -> None:
        link = endpoints.get("link")
        if link is None:
            raise TransportError("inprocess: no local socket was given (start it through iotbench.pipeline.deploy)")
        self._path = link.extras["path"]

    def _running(self) -> str:
        if self._path is None:
            raise TransportError("in-process transport used before start()")
        return self._path

    async def open_sender(self, index: int) -> _Sender:
        """Connect to the receiving side's socket; it listens before any sender opens (bounded wait)."""
        path, timeout = self._running(), self.options.connect_timeout_s
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                return _Sender(await _connect(path), self.options.max_buffered_bytes)
            except (ConnectionRefusedError, FileNotFoundError):
                if asyncio.get_running_loop().time() > deadline:
                    raise TransportError(
                        f"inprocess: nothing listened on the local socket within {timeout:g} s"
                    ) from None
                await asyncio.sleep(0.01)

    async def open_receiver(self, deliver: Deliver) -> _Receiver:
        return await _Receiver(deliver).listen(self._running())

    async def stop(self) -> None:
        self._path = None
