"""CoAP (RFC 7252) ingest with aiocoap: confirmable or non-confirmable POSTs to a CoAP gateway.

CoAP is what constrained devices speak over UDP: a 4-byte header, no connection, and
either confirmable messages (acknowledged and retransmitted by the message layer) or
non-confirmable ones (fire-and-forget at that layer; the gateway's response still comes
back and is what ``send`` waits for). Each sender is one client context (one UDP
socket); a batch larger than a datagram goes block-wise. The receiver reads the
gateway's TCP event stream. ``endpoint`` (or ``IOTBENCH_COAP_ENDPOINT``), as
``host:port``, names a running gateway instead of starting one.

What it costs (measured here): aiocoap spends ~410 us of client and ~300 us of gateway
CPU per request, so one socket tops out near 1.4-1.9k requests/s. At Fabrikam's 1,667
events/s over one connection a batch-1 cell falls behind its schedule (2026-11-29, json
and protobuf, 6 s: everything stored, nothing lost, send delay p99 490-575 ms, so "did
not keep up"); batch 100 keeps up (send delay p99 1.5 ms, end-to-end p99 57-67 ms). Real
devices each have their own socket: the per-request cost, not one socket's ceiling, is
what a device pays.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import aiocoap

from iotbench.transports.base import (
    Deliver,
    ReceiverDefaults,
    TransportDefaults,
    TransportError,
    stop_task,
    task_failure,
)
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.event_stream import COAP_HELLO as HELLO
from iotbench.transports.event_stream import COAP_RESOURCE as RESOURCE
from iotbench.transports.event_stream import decode_frames
from iotbench.transports.options import CONNECT_TIMEOUT_S, TransportOptions, option
from iotbench.transports.servers.base import Server
from iotbench.transports.servers.coap import CoapGateway

__all__ = ["CoapOptions", "CoapTransport"]

BLOCK_SIZE = 1024  # aiocoap's default block size: larger payloads go block-wise


class _Sender:
    def __init__(self, context: aiocoap.Context, host: str, port: int, confirmable: bool) -> None:
        self._context = context
        self._base = f"coap://{host}:{port}/{RESOURCE}?d="
        self._tuning = aiocoap.Reliable if confirmable else aiocoap.Unreliable  # CON or NON
        self._uploads = 0

    async def send(self, key: str, payload: bytes) -> None:
        uri = self._base + key
        if len(payload) > BLOCK_SIZE:
            # aiocoap assembles Block1 uploads per (client, URI): concurrent batches from one
            # sender to one URI would be mixed up (5.00), so each block-wise upload gets its own
            self._uploads += 1
            uri = f"{uri}&u={self._uploads}"
        request = aiocoap.Message(code=aiocoap.POST, transport_tuning=self._tuning, uri=uri, payload=payload)
        try:
            response = await self._context.request(request).response
        except aiocoap.error.Error as exc:
            raise TransportError(f"CoAP request failed: {exc}") from None
        if response.code != aiocoap.CHANGED:
            raise TransportError(f"CoAP gateway answered {response.code}: {response.payload[:200]!r}")

    async def close(self) -> None:
        await self._context.shutdown()


class _Receiver(ReceiverDefaults):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deliver: Deliver) -> None:
        self._writer = writer
        self.error: str | None = None
        self._task = asyncio.create_task(self._read(reader, deliver), name="coap-receiver")

    async def _read(self, reader: asyncio.StreamReader, deliver: Deliver) -> None:
        buffer = bytearray()
        try:
            while chunk := await reader.read(256 * 1024):
                buffer += chunk
                for body, _ in decode_frames(buffer):
                    deliver(body)
            self.error = "the gateway ended the event stream"
        except (ConnectionError, OSError) as exc:
            self.error = f"event stream broke: {exc!r}"

    def failure(self) -> str | None:
        return task_failure(self._task, self.error)

    async def close(self) -> None:
        await stop_task(self._task)
        self._writer.close()


def _address(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TransportError(f"coap endpoint {endpoint!r} is not host:port")
    return host, int(port)


@dataclass(frozen=True)
class CoapOptions(TransportOptions):
    transport: ClassVar[str] = "coap"

    confirmable: bool = option(
        True, "confirmable POSTs (acknowledged and retransmitted by the message layer); false: non-confirmable"
    )
    endpoint: str = option(
        "", "host:port of a running CoAP gateway instead of starting one (or IOTBENCH_COAP_ENDPOINT)"
    )
    connect_timeout_s: float = option(
        10.0,
        "bound on the connect to the gateway's event stream",
        low=CONNECT_TIMEOUT_S[0],
        high=CONNECT_TIMEOUT_S[1],
        unit="s",
    )

    def check(self) -> None:
        if self.endpoint:
            _address(self.endpoint)


class CoapTransport(TransportDefaults):
    """``CoapTransport(confirmable=False)``: CoAP POSTs to the project's CoAP gateway."""

    name: ClassVar[str] = "coap"
    label: ClassVar[str] = "CoAP (RFC 7252) POSTs over UDP through aiocoap, confirmable or not, to a CoAP gateway"
    Options: ClassVar[type[CoapOptions]] = CoapOptions
    libraries: ClassVar[tuple[str, ...]] = ("aiocoap",)
    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]] = [{"confirmable": True}, {"confirmable": False}]

    def __init__(self, **options: Any) -> None:
        self.options = CoapOptions(**options)
        self._address: tuple[str, int] | None = None

    def _external(self) -> str:
        return self.options.endpoint or os.environ.get("IOTBENCH_COAP_ENDPOINT", "")

    def servers(self) -> dict[str, Server]:
        """The project's CoAP gateway, unless ``endpoint`` or the environment names one."""
        return {} if self._external() else {"gateway": CoapGateway()}

    async def start(self, endpoints: Mapping[str, Endpoint]) -> None:
        started = endpoints.get("gateway")
        if started is not None:
            self._address = (started.host, started.port)
        elif self._external():
            self._address = _address(self._external())
        else:
            raise TransportError("coap: no gateway was started and none is named (endpoint or IOTBENCH_COAP_ENDPOINT)")

    def _running(self) -> tuple[str, int]:
        if self._address is None:
            raise TransportError("coap transport used before start()")
        return self._address

    async def open_sender(self, index: int) -> _Sender:
        host, port = self._running()
        context = await aiocoap.Context.create_client_context(transports=["udp6"])
        return _Sender(context, host, port, bool(self.options.confirmable))

    async def open_receiver(self, deliver: Deliver) -> _Receiver:
        host, port = self._running()
        timeout_s = float(self.options.connect_timeout_s)
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await asyncio.open_connection(host, port)
                hello = await reader.readexactly(len(HELLO))
        except TimeoutError:
            raise TransportError(
                f"the CoAP gateway at {host}:{port} did not answer within {timeout_s:g} s "
                "(connect_timeout_s); is it an iotbench CoAP gateway?"
            ) from None
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise TransportError(
                f"cannot reach the CoAP gateway's stream at {host}:{port}: {exc}; is it running?"
            ) from None
        if hello != HELLO:
            writer.close()
            raise TransportError(f"{host}:{port} is not an iotbench CoAP gateway (it sent {hello!r})")
        return _Receiver(reader, writer, deliver)

    async def stop(self) -> None:
        self._address = None
