"""A CoAP ingest gateway: devices POST readings over UDP, the consumer reads a TCP stream.

``POST coap://host:port/telemetry?d={device}`` with the payload as the body; the
gateway answers 2.04 Changed once the event is in its sink (the ingest gateway's
``StreamSink``: bounded, same frames), and a consumer connected to the TCP port of the
same number reads the events as length-prefixed frames (``ingest_gateway.encode_frame``).
A confirmable request is acknowledged at the message layer and then answered; a
non-confirmable one is answered with a non-confirmable response. Payloads above one
datagram (a batch) travel block-wise (Block1), which aiocoap does on both ends.

Run as ``python -m iotbench.transports.emulators.coap_gateway PORT`` (``coap_server.start_coap_gateway``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import aiocoap
import aiocoap.resource

from iotbench.transports.emulators.ingest_gateway import SinkFull, StreamSink
from iotbench.transports.event_stream import COAP_HELLO as HELLO
from iotbench.transports.event_stream import COAP_RESOURCE as RESOURCE
from iotbench.transports.event_stream import Event

__all__ = ["COUNTS_FILE", "serve"]

HUB = "coap"
COUNTS_FILE = "datagrams.json"  # in the gateway's folder: its datagram counts, for the cell's wire bytes
COUNTS_EVERY_S = 0.5


class _Datagrams:
    """The CoAP datagrams each way and their bytes, as this gateway received and sent them: the
    kernel keeps no per-socket byte counters for UDP, so the server counts (one datagram, one count)."""

    def __init__(self) -> None:
        self.counts = {"udp_datagrams_up": 0, "udp_bytes_up": 0, "udp_datagrams_down": 0, "udp_bytes_down": 0}

    def install(self) -> None:
        from aiocoap.transports import udp6

        counts, iface = self.counts, udp6.MessageInterfaceUDP6
        received, send = iface.datagram_msg_received, iface.send

        def counted_received(self: Any, data: bytes, ancdata: Any, flags: int, address: Any) -> None:
            counts["udp_datagrams_up"] += 1
            counts["udp_bytes_up"] += len(data)
            received(self, data, ancdata, flags, address)

        def counted_send(self: Any, message: Any) -> None:
            counts["udp_datagrams_down"] += 1
            counts["udp_bytes_down"] += len(message.encode())
            send(self, message)

        iface.datagram_msg_received, iface.send = counted_received, counted_send

    def write(self) -> None:
        tmp = Path(COUNTS_FILE + ".tmp")
        tmp.write_text(json.dumps(self.counts))
        tmp.replace(COUNTS_FILE)


class _Telemetry(aiocoap.resource.Resource):
    def __init__(self, sink: StreamSink) -> None:
        super().__init__()
        self._sink = sink

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        device = next((q[2:] for q in request.opt.uri_query if q.startswith("d=")), None)
        try:
            await self._sink.put([Event(HUB, bytes(request.payload), {}, device)])
        except SinkFull as exc:
            return aiocoap.Message(code=aiocoap.SERVICE_UNAVAILABLE, payload=str(exc).encode())
        return aiocoap.Message(code=aiocoap.CHANGED)


async def _stream(sink: StreamSink, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Hand queued frames to one consumer connection until it goes away."""
    closed = asyncio.ensure_future(reader.read())  # EOF (or an error) when the consumer leaves
    try:
        writer.write(HELLO)
        while not closed.done():
            take = asyncio.ensure_future(sink.take())
            await asyncio.wait({take, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not take.done():
                take.cancel()
                break
            writer.write(take.result())
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        closed.cancel()
        writer.close()


async def serve(port: int, host: str = "127.0.0.1", queue_bytes: int = 64 * 1024 * 1024) -> Any:
    """CoAP on UDP ``port`` and the event stream on TCP ``port``; runs until cancelled."""
    sink = StreamSink(max_bytes=queue_bytes)
    datagrams = _Datagrams()
    datagrams.install()
    site = aiocoap.resource.Site()
    site.add_resource([RESOURCE], _Telemetry(sink))
    # UDP only: aiocoap would also serve CoAP over TCP on this port, which is the stream's
    context = await aiocoap.Context.create_server_context(site, bind=(host, port), transports=["udp6"])
    server = await asyncio.start_server(lambda r, w: _stream(sink, r, w), host, port)
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: None if stopped.done() else stopped.set_result(None))
    try:
        while not stopped.done():  # until the process is told to stop
            await asyncio.wait([stopped], timeout=COUNTS_EVERY_S)
            datagrams.write()
    finally:
        datagrams.write()
        server.close()
        await context.shutdown()


if __name__ == "__main__":
    try:
        asyncio.run(serve(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass
