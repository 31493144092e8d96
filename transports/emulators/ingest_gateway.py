"""The project's own HTTP ingest gateway: an ASGI app with the Event Hubs REST send API shape.

Devices POST to it the way they would POST to Event Hubs over HTTPS (FACTS.md):

- ``POST /{hub}/messages`` -- one event, the raw body;
- ``POST /{hub}/publishers/{publisher}/messages`` -- the same through a per-device URL;
- either URL with ``Content-Type: application/vnd.microsoft.servicebus.json`` and a body
  ``[{"Body": "...", "UserProperties": {...}}, ...]`` -- a batch; ``Body`` is text, so a
  binary payload travels base64-encoded and says so in its properties.

It answers ``201 Created`` once the events are in its sink, ``400`` for a malformed
batch, ``413`` above Event Hubs' 1 MB publication limit and ``503`` (Event Hubs'
ServerBusy) when the sink stays full. The sink is pluggable (``Sink``): the default
``StreamSink`` holds events within a byte budget and hands them to one long-lived
``GET /$stream`` response, length-prefixed, which is how the harness's receiver gets
them with bounded memory on both sides. Another front end (a local Event Hubs
endpoint) passes its own sink to ``create_app``.

Run it in its own process (``ingest_server.start_gateway``), never in the harness's
event loop: the cell would measure the two sharing one loop.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import msgspec

from iotbench.transports.event_stream import BATCH_CONTENT_TYPE, MAX_PUBLICATION, STREAM_PATH, Event, encode_frame

__all__ = ["Sink", "SinkFull", "StreamSink", "app_from_env", "create_app"]


Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class SinkFull(RuntimeError):
    """The sink could not take the events in time: the gateway answers 503 ServerBusy."""


class Sink(Protocol):
    """Where accepted events go; ``put`` returns once they are safe there (then 201 follows)."""

    async def put(self, events: list[Event]) -> None: ...


class _BatchEntry(msgspec.Struct):
    Body: str
    UserProperties: dict[str, Any] = {}


_decode_batch = msgspec.json.Decoder(list[_BatchEntry]).decode
_encode_json = msgspec.json.encode


class StreamSink:
    """A byte-bounded queue of framed events, drained by ``GET /$stream`` readers.

    ``put`` waits while the budget is spent (backpressure reaches the devices as slow
    201s) and gives up after ``put_timeout_s`` (503). One payload larger than the
    whole budget is still taken when the queue is empty, so it cannot block forever.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, put_timeout_s: float = 5.0) -> None:
        self.max_bytes = max_bytes
        self.put_timeout_s = put_timeout_s
        self._frames: deque[bytes] = deque()
        self._size = 0
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()

    async def put(self, events: list[Event]) -> None:
        frames = [encode_frame(e) for e in events]
        size = sum(map(len, frames))
        if self._size and self._size + size > self.max_bytes:
            try:
                async with asyncio.timeout(self.put_timeout_s):
                    while self._size and self._size + size > self.max_bytes:
                        self._writable.clear()
                        await self._writable.wait()
            except TimeoutError:
                raise SinkFull(
                    f"{self._size} bytes queued for the stream reader, none taken for {self.put_timeout_s:g} s"
                ) from None
        self._frames.extend(frames)
        self._size += size
        self._readable.set()

    async def take(self, max_chunk: int = 256 * 1024) -> bytes:
        """Everything queued (up to ``max_chunk`` bytes), waiting until there is something."""
        while not self._frames:
            self._readable.clear()
            await self._readable.wait()
        frames, size, queue = [], 0, self._frames
        while queue and size < max_chunk:
            frame = queue.popleft()
            frames.append(frame)
            size += len(frame)
        self._size -= size
        self._writable.set()
        return b"".join(frames)


# ---- the ASGI app -------------------------------------------------------------------


async def _respond(send: Send, status: int, text: str = "") -> None:
    body = text.encode()
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it exceeds ``limit`` (the rest is not kept)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client went away mid-request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if size <= limit else None


def _route(path: str) -> tuple[str, str | None] | None:
    """(hub, publisher) for ``/{hub}/messages`` or ``/{hub}/publishers/{id}/messages``."""
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[1] == "messages" and parts[0]:
        return parts[0], None
    if len(parts) == 4 and parts[1] == "publishers" and parts[3] == "messages" and parts[0] and parts[2]:
        return parts[0], parts[2]
    return None


def _events(hub: str, publisher: str | None, content_type: str, body: bytes) -> list[Event]:
    if not content_type.startswith(BATCH_CONTENT_TYPE):
        return [Event(hub, body, {}, publisher)]
    entries = _decode_batch(body)  # msgspec.ValidationError / DecodeError name what is wrong
    return [Event(hub, e.Body.encode("utf-8"), e.UserProperties, publisher) for e in entries]


async def _stream(sink: StreamSink, receive: Receive, send: Send) -> None:
    """Hand queued frames to this reader until it disconnects."""
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x-iotbench-frames")]}
    )
    await send({"type": "http.response.body", "body": b"", "more_body": True})  # headers out now

    async def pump() -> None:
        while True:
            await send({"type": "http.response.body", "body": await sink.take(), "more_body": True})

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(watch())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def create_app(sink: Sink | None = None, *, max_body: int = MAX_PUBLICATION) -> Callable[..., Awaitable[None]]:
    """The ASGI app; ``sink`` defaults to a ``StreamSink`` (served at ``GET /$stream``)."""
    the_sink: Sink = sink if sink is not None else StreamSink()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == STREAM_PATH and method == "GET" and isinstance(the_sink, StreamSink):
            await _stream(the_sink, receive, send)
            return
        route = _route(path)
        if route is None:
            await _respond(
                send, 404, f"no such endpoint {path}; POST to /{{hub}}/messages or /{{hub}}/publishers/{{id}}/messages"
            )
            return
        if method != "POST":
            await _respond(send, 405, f"{method} is not allowed here; POST the events")
            return
        body = await _read_body(receive, max_body)
        if body is None:
            await _respond(send, 413, f"publication larger than {max_body} bytes; send smaller batches")
            return
        content_type = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"), "")
        try:
            events = _events(*route, content_type, body)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError) as exc:
            await _respond(send, 400, f'malformed batch ({exc}); send [{{"Body": "..."}}, ...]')
            return
        try:
            await the_sink.put(events)
        except SinkFull as exc:
            await _respond(send, 503, f"ServerBusy: {exc}")
            return
        await _respond(send, 201)

    return app


def app_from_env() -> Callable[..., Awaitable[None]]:
    """The app a server process runs (``uvicorn --factory``): settings from the environment.

    ``IOTBENCH_GATEWAY_SINK`` -- ``module:factory`` returning a Sink (default: StreamSink);
    ``IOTBENCH_GATEWAY_QUEUE_BYTES`` -- the StreamSink's byte budget.
    """
    spec = os.environ.get("IOTBENCH_GATEWAY_SINK", "")
    if spec:
        module, _, attr = spec.partition(":")
        sink = getattr(importlib.import_module(module), attr)()
    else:
        sink = StreamSink(max_bytes=int(os.environ.get("IOTBENCH_GATEWAY_QUEUE_BYTES", 64 * 1024 * 1024)))
    return create_app(sink)
