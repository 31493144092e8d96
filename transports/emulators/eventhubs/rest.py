"""The local Event Hubs endpoint's REST send API: the ingest gateway's app, feeding the hub.

The HTTP side is not written twice: ``ingest_gateway.create_app`` already speaks the
REST send API's shape (single event, per-device publisher URL, the servicebus JSON
batch form, 413 above the publication limit, 503 on ``SinkFull``). This module gives
it a sink that appends to the same in-memory hub the AMQP side serves -- so both
protocols land in one hub -- and puts the service's SAS check in front (401 without a
valid ``Authorization`` token for the hub).

As in the service, a publisher URL's id is the partition key, user properties become
the AMQP message's application properties, and one POST is one publication (a batch
is admitted or throttled whole).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from azure.eventhub._pyamqp._encode import encode_payload
from azure.eventhub._pyamqp.message import Message

from iotbench.transports.emulators.eventhubs.amqp import StoredEvent
from iotbench.transports.emulators.eventhubs.hub import Hub, Refused
from iotbench.transports.emulators.ingest_gateway import SinkFull, create_app
from iotbench.transports.event_stream import MAX_PUBLICATION, Event
from iotbench.transports.sas import SasError, grants, verify

__all__ = ["HubSink", "rest_app", "serve_rest"]


def _stored(event: Event) -> StoredEvent:
    message = Message(application_properties=dict(event.properties) or None, data=[event.body])  # type: ignore[arg-type]
    return StoredEvent(b"", bytes(encode_payload(bytearray(), message)), {}, len(event.body))


class HubSink:
    """``ingest_gateway.Sink`` over a ``Hub``: a POST's events become one publication."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def put(self, events: list[Event]) -> None:
        if not events:
            return
        try:
            self.hub.publish(
                [_stored(e) for e in events], sum(len(e.body) for e in events), partition=None, key=events[0].publisher
            )
        except Refused as exc:  # ServerBusy (and any other refusal) is the gateway's 503
            raise SinkFull(exc.description) from None


async def _refuse(send: Callable[[dict[str, Any]], Awaitable[None]], status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def rest_app(hub: Hub, key_name: str, key: str) -> Callable[..., Awaitable[None]]:
    """The gateway app behind the service's SAS check, for ``hub`` only."""
    inner = create_app(HubSink(hub), max_body=hub.limits.max_message_bytes or MAX_PUBLICATION)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"].strip("/")
            if path.split("/")[0].lower() != hub.name.lower():
                await _refuse(
                    send,
                    404,
                    f"the messaging entity '{path.split('/')[0]}' could not be found "
                    f"(this endpoint serves '{hub.name}')",
                )
                return
            token = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
            try:
                if not grants(verify(token, key_name, key), path):
                    raise SasError(f"the token does not grant '{path}'")
            except SasError as exc:  # the reason, never the token
                await _refuse(send, 401, f"Unauthorized: {exc}")
                return
        await inner(scope, receive, send)

    return app


async def serve_rest(
    hub: Hub, key_name: str, key: str, host: str, port: int, *, tls: tuple[str, str] | None = None
) -> Callable[[], Awaitable[None]]:
    """Serve the REST API in this event loop (uvicorn; HTTPS with ``tls`` = (certfile, keyfile));
    returns the coroutine function that stops it."""
    import importlib.util

    import uvicorn

    config = uvicorn.Config(
        rest_app(hub, key_name, key),
        host=host,
        port=port,
        loop="none",
        lifespan="off",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=60,
        backlog=4096,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(), name="eventhubs-rest")
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if task.done():
        task.result()  # raises why it could not start

    async def stop() -> None:
        server.should_exit = True
        try:
            async with asyncio.timeout(5.0):
                await task
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()

    return stop
