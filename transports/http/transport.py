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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp

from iotbench.transports.base import (
    Deliver,
    ReceiverDefaults,
    TransportDefaults,
    TransportError,
    stop_task,
    task_failure,
)
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.event_stream import STREAM_PATH, decode_frames
from iotbench.transports.http.rest_client import BODY_ENCODING, RestEndpoint, RestSender
from iotbench.transports.options import CONNECT_TIMEOUT_S, TransportOptions, option
from iotbench.transports.servers.base import Server
from iotbench.transports.servers.ingest import SERVERS, IngestGateway, default_server

__all__ = ["HttpOptions", "HttpTransport", "BODY_ENCODING"]

MODES = ("keep-alive", "new-connection", "http2")
FORMS = ("single", "batch")
URLS = ("publisher", "hub")


@dataclass(frozen=True)
class HttpOptions(TransportOptions):
    transport: ClassVar[str] = "http"

    mode: str = option(
        "keep-alive",
        "HTTP/1.1 on one persistent connection, a new connection per request, or HTTP/2 streams on one connection",
        choices=MODES,
    )
    tls: bool = option(False, "HTTPS through a local CA")
    form: str = option("single", "the payload as the body, or wrapped in the servicebus JSON batch form", choices=FORMS)
    url: str = option("publisher", "POST to the per-device publisher URL or to the hub URL", choices=URLS)
    server: str = option(
        "auto",
        "the gateway's server (auto: uvicorn for HTTP/1.1, granian else hypercorn for HTTP/2)",
        choices=("auto", *SERVERS),
    )
    auth: str = option(
        "sas", "a SAS Authorization header on every request, as to Event Hubs, or none", choices=("sas", "none")
    )
    hub: str = option("telemetry", "the hub name in the URL", nonempty=True)
    endpoint: str = option(
        "", "http(s)://host:port of a running gateway instead of starting one (or IOTBENCH_HTTP_ENDPOINT)"
    )
    ca_file: str = option("", "CA certificates to trust for an external https endpoint (empty: the system's)")
    connect_timeout_s: float = option(
        10.0, "bound on each connect and request", low=CONNECT_TIMEOUT_S[0], high=CONNECT_TIMEOUT_S[1], unit="s"
    )

    def check(self) -> None:
        if urlsplit(self.endpoint).password:
            raise TransportError(
                "http endpoint holds a password, and specs are saved with the results; "
                "give the endpoint in IOTBENCH_HTTP_ENDPOINT instead (never saved)"
            )
        if self.mode == "http2" and self.server == "uvicorn":
            raise TransportError(
                "uvicorn does not speak HTTP/2; use server='granian' or 'hypercorn' (or 'auto') with mode='http2'"
            )


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
    label: ClassVar[str] = "HTTP/1.1 or HTTP/2 (TLS optional) POSTs shaped like Event Hubs' REST API, to a gateway"
    Options: ClassVar[type[HttpOptions]] = HttpOptions
    libraries: ClassVar[tuple[str, ...]] = (
        "aiohttp",
        "httptools",
        "h2",
        "uvicorn",
        "uvloop",
        "granian",
        "hypercorn",
        "trustme",
    )
    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]] = [
        {},
        {"mode": "new-connection"},
        {"mode": "http2"},
        {"tls": True},
        {"mode": "http2", "tls": True},
        {"form": "batch", "url": "hub"},
        {"mode": "http2", "server": "hypercorn"},
    ]

    def __init__(self, **options: Any) -> None:
        self.options = HttpOptions(**options)
        self._endpoint: RestEndpoint | None = None

    def _external(self) -> str:
        return self.options.endpoint or os.environ.get("IOTBENCH_HTTP_ENDPOINT", "")

    def servers(self) -> dict[str, Server]:
        """The ingest gateway on the HTTP server the options pick, unless an endpoint is named."""
        if self._external():
            return {}
        o = self.options
        return {"gateway": IngestGateway(o.server if o.server != "auto" else default_server(o.mode), tls=bool(o.tls))}

    async def start(self, endpoints: Mapping[str, Endpoint]) -> None:
        o = self.options
        started = endpoints.get("gateway")
        if started is not None:
            url, ca_file = f"{started.scheme}://{started.host}:{started.port}", started.ca_file
        else:
            url, ca_file = self._external(), o.ca_file or os.environ.get("IOTBENCH_HTTP_CA_FILE") or None
        if not url:
            raise TransportError("http: no gateway was started and none is named (endpoint or IOTBENCH_HTTP_ENDPOINT)")
        sas_key = os.environ.get("IOTBENCH_HTTP_SAS_KEY") or secrets.token_urlsafe(32)
        self._endpoint = RestEndpoint(
            url,
            ca_file,
            o.hub,
            os.environ.get("IOTBENCH_HTTP_SAS_KEY_NAME", "send"),
            sas_key if o.auth == "sas" else None,
        )

    def _running(self) -> RestEndpoint:
        if self._endpoint is None:
            raise TransportError("http transport used before start()")
        return self._endpoint

    async def open_sender(self, index: int) -> RestSender:
        o = self.options
        return await RestSender(self._running(), o.mode, o.form, o.url, float(o.connect_timeout_s)).connect()

    async def open_receiver(self, deliver: Deliver) -> _Receiver:
        endpoint, timeout_s = self._running(), float(self.options.connect_timeout_s)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=endpoint.ssl_context() or False),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout_s),
        )
        url = endpoint.base + STREAM_PATH
        try:
            async with asyncio.timeout(timeout_s):
                response = await session.get(url)
        except TimeoutError:
            await session.close()
            raise TransportError(
                f"the gateway at {endpoint.base} did not answer within {timeout_s:g} s "
                "(connect_timeout_s); is it an iotbench ingest gateway?"
            ) from None
        except aiohttp.ClientError as exc:
            await session.close()
            raise TransportError(f"cannot reach the gateway at {endpoint.base}: {exc}; is it running?") from None
        if response.status != 200:
            response.release()
            await session.close()
            raise TransportError(
                f"the gateway at {endpoint.base} refused the event stream ({response.status}); "
                "is it an iotbench ingest gateway with the default stream sink?"
            )
        return _Receiver(session, response, deliver)

    async def stop(self) -> None:
        self._endpoint = None
