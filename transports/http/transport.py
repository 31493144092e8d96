"""HTTP(S) ingest: devices POST events to a gateway with the Event Hubs REST send API shape.

Client modes (``mode``), each one connection per sender (the runner opens
``connections`` senders; devices are spread over them):

- ``keep-alive`` -- HTTP/1.1, one persistent connection, one request at a time on it
  (``http1_client``: aiohttp's per-request cost hid the protocol's, see there);
- ``new-connection`` -- HTTP/1.1, a fresh TCP (and TLS) connection for every request:
  what a device that sleeps between readings does;
- ``http2`` -- one HTTP/2 connection, concurrent requests as streams (``http2_client``).

``tls`` adds TLS through a local CA; ``form = "batch"`` wraps each payload in the
servicebus JSON batch form (a payload that is not UTF-8 text goes base64-encoded with
the ``iotbench-body: base64`` user property, and the receiver undoes it); ``url``
picks the per-device publisher URL or the hub URL; ``server`` picks the gateway's
server (``auto``: uvicorn for HTTP/1.1, granian -- else hypercorn -- for HTTP/2).
Every request carries the query string and a SAS ``Authorization`` header like one to
Event Hubs (``auth = "none"`` drops the header), so the bytes on the wire match.

The receiver reads the gateway's ``GET /$stream``. With ``endpoint`` (or
``IOTBENCH_HTTP_ENDPOINT``) set, that gateway is used and none is started.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from pathlib import Path
from typing import Any, ClassVar, Mapping
from urllib.parse import urlsplit

import aiohttp

from iotbench.transports.base import Deliver, ReceiverDefaults, TransportDefaults, TransportError, stop_task, task_failure
from iotbench.transports.event_stream import STREAM_PATH, decode_frames
from iotbench.transports.servers.ingest import SERVERS, Gateway, default_server, start_gateway
from iotbench.transports.options import CONNECT_TIMEOUT_S, choice, declared, flag, number, text
from iotbench.transports.http.rest_client import BODY_ENCODING, RestEndpoint, RestSender

__all__ = ["HttpTransport", "BODY_ENCODING"]

MODES = ("keep-alive", "new-connection", "http2")
FORMS = ("single", "batch")
URLS = ("publisher", "hub")


class _Receiver(ReceiverDefaults):
    """Reads the gateway's event stream and delivers each payload, in order."""

    def __init__(self, session: aiohttp.ClientSession, response: aiohttp.ClientResponse, deliver: Deliver) -> None:
        self._session, self._response, self._deliver = session, response, deliver
        self.error: str | None = None
        self._task = asyncio.create_task(self._read(), name="http-receiver")

    async def _read(self) -> None:
        buffer, deliver, b64decode = bytearray(), self._deliver, base64.b64decode
        try:
            async for chunk in self._response.content.iter_any():
                buffer += chunk
                for body, props in decode_frames(buffer):
                    deliver(b64decode(body) if props.get(BODY_ENCODING) == "base64" else body)
            self.error = "the gateway ended the event stream"
        except (aiohttp.ClientError, OSError) as exc:
            self.error = f"event stream broke: {exc!r}"

    def failure(self) -> str | None:
        return task_failure(self._task, self.error)

    async def close(self) -> None:
        await stop_task(self._task)
        self._response.release()
        await self._session.close()


class HttpTransport(TransportDefaults):
    """``HttpTransport(mode="http2", tls=True)``: the ingest gateway over HTTP(S)."""

    name: ClassVar[str] = "http"
    OPTIONS: ClassVar[Mapping[str, Any]] = {
        "mode": "keep-alive", "tls": False, "form": "single", "url": "publisher", "server": "auto",
        "auth": "sas", "hub": "telemetry", "endpoint": "", "ca_file": "", "connect_timeout_s": 10.0,
    }
    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]] = [
        {}, {"mode": "new-connection"}, {"mode": "http2"}, {"tls": True}, {"mode": "http2", "tls": True},
        {"form": "batch", "url": "hub"}, {"mode": "http2", "server": "hypercorn"},
    ]

    def __init__(self, **options: Any) -> None:
        self.options = o = declared("http", options, self.OPTIONS)
        # every option is checked here (no I/O), so a spec is refused when it is loaded
        for option, allowed in (("mode", MODES), ("form", FORMS), ("url", URLS), ("auth", ("sas", "none")),
                                ("server", ("auto", *SERVERS))):
            choice("http", option, o[option], allowed)
        flag("http", "tls", o["tls"])
        number("http", "connect_timeout_s", o["connect_timeout_s"], *CONNECT_TIMEOUT_S, "s")
        text("http", "hub", o["hub"], empty_ok=False)
        text("http", "ca_file", o["ca_file"])
        if urlsplit(text("http", "endpoint", o["endpoint"])).password:
            raise TransportError("http endpoint holds a password, and specs are saved with the results; "
                                 "give the endpoint in IOTBENCH_HTTP_ENDPOINT instead (never saved)")
        if o["mode"] == "http2" and o["server"] == "uvicorn":
            raise TransportError("uvicorn does not speak HTTP/2; use server='granian' or 'hypercorn' "
                                 "(or 'auto') with mode='http2'")
        self._gateway: Gateway | None = None
        self._endpoint: RestEndpoint | None = None

    async def start(self, workdir: Path) -> None:
        o = self.options
        server = o["server"] if o["server"] != "auto" else default_server(o["mode"])
        sas_key = os.environ.get("IOTBENCH_HTTP_SAS_KEY") or secrets.token_urlsafe(32)
        external = o["endpoint"] or os.environ.get("IOTBENCH_HTTP_ENDPOINT", "")
        ca_file = o["ca_file"] or os.environ.get("IOTBENCH_HTTP_CA_FILE") or None
        if not external:
            self._gateway = await asyncio.to_thread(start_gateway, Path(workdir), server=server, tls=bool(o["tls"]))
            external, ca_file = self._gateway.url, str(self._gateway.tls.ca) if self._gateway.tls else None
        self._endpoint = RestEndpoint(external, ca_file, o["hub"], os.environ.get("IOTBENCH_HTTP_SAS_KEY_NAME", "send"),
                                   sas_key if o["auth"] == "sas" else None)

    def _running(self) -> RestEndpoint:
        if self._endpoint is None:
            raise TransportError("http transport used before start()")
        return self._endpoint

    async def open_sender(self, index: int) -> RestSender:
        o = self.options
        return RestSender(self._running(), o["mode"], o["form"], o["url"], float(o["connect_timeout_s"]))

    async def open_receiver(self, deliver: Deliver) -> _Receiver:
        endpoint, timeout_s = self._running(), float(self.options["connect_timeout_s"])
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=endpoint.ssl_context() or False),
                                        timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout_s))
        url = endpoint.base + STREAM_PATH
        try:
            async with asyncio.timeout(timeout_s):
                response = await session.get(url)
        except TimeoutError:
            await session.close()
            raise TransportError(f"the gateway at {endpoint.base} did not answer within {timeout_s:g} s "
                                 "(connect_timeout_s); is it an iotbench ingest gateway?") from None
        except aiohttp.ClientError as exc:
            await session.close()
            raise TransportError(f"cannot reach the gateway at {endpoint.base}: {exc}; is it running?") from None
        if response.status != 200:
            response.release()
            await session.close()
            raise TransportError(f"the gateway at {endpoint.base} refused the event stream ({response.status}); "
                                 "is it an iotbench ingest gateway with the default stream sink?")
        return _Receiver(session, response, deliver)

    async def stop(self) -> None:
        gateway, self._gateway, self._endpoint = self._gateway, None, None
        if gateway is not None:
            await asyncio.to_thread(gateway.stop)
