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
import sys
from typing import Any

import aiocoap
import aiocoap.resource

from iotbench.transports.emulators.ingest_gateway import SinkFull, StreamSink
from iotbench.transports.event_stream import COAP_HELLO as HELLO
from iotbench.transports.event_stream import COAP_RESOURCE as RESOURCE
from iotbench.transports.event_stream import Event

__all__ = ["serve"]

HUB = "coap"


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
    site = aiocoap.resource.Site()
    site.add_resource([RESOURCE], _Telemetry(sink))
    # UDP only: aiocoap would also serve CoAP over TCP on this port, which is the stream's
    context = await aiocoap.Context.create_server_context(site, bind=(host, port), transports=["udp6"])
    server = await asyncio.start_server(lambda r, w: _stream(sink, r, w), host, port)
    try:
        await asyncio.Future()  # until the process is told to stop
    finally:
        server.close()
        await context.shutdown()


if __name__ == "__main__":
    try:
        asyncio.run(serve(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass
