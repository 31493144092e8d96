"""The Event Hubs REST send API, client side: where to POST, with what headers, in which form.

``RestSender`` is one connection's worth of devices posting events as Event Hubs'
REST API takes them (``POST /{hub}/messages`` or ``/{hub}/publishers/{device}/messages``,
single or JSON batch form, a SAS ``Authorization`` header) over HTTP/1.1 keep-alive,
a new connection per request, or HTTP/2. The ``http`` transport points it at the
local ingest gateway; ``eventhubs-https`` at a namespace (or the local Event Hubs endpoint).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec

from iotbench.transports.base import TransportError
from iotbench.transports.event_stream import BATCH_CONTENT_TYPE
from iotbench.transports.http.http1_client import Http1Connection
from iotbench.transports.http.http2_client import Http2Connection
from iotbench.transports.sas import sign as sas_token
from iotbench.transports.tls import client_context

__all__ = ["BODY_ENCODING", "RestEndpoint", "RestSender", "batch_form"]

BODY_ENCODING = "iotbench-body"  # user property saying a batch entry's Body is base64
SINGLE_CONTENT_TYPE = "application/atom+xml;type=entry;charset=utf-8"  # what Event Hubs documents
QUERY = "?timeout=60&api-version=2014-01"
SAS_TTL_S = 24 * 3600.0  # one token per sender, valid longer than any cell

encode_json = msgspec.json.encode


class RestEndpoint:
    """Where the gateway is and how to reach it (URL, TLS context, SAS credentials)."""

    def __init__(self, url: str, ca_file: str | None, hub: str, sas_key_name: str, sas_key: str | None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(f"http endpoint {url!r} is not an http(s)://host:port URL")
        self.base = url.rstrip("/")
        self.host, self.tls = parts.hostname, parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.ca_file = ca_file
        self.hub = hub
        self._sas = (sas_key_name, sas_key) if sas_key else None

    def ssl_context(self) -> ssl.SSLContext | None:
        """A fresh context per connection (ALPN differs by mode); the system's trust without a CA file."""
        if not self.tls:
            return None
        return client_context(self.ca_file) if self.ca_file else ssl.create_default_context()

    def headers(self, content_type: str) -> dict[str, str]:
        headers = {"Content-Type": content_type}
        if self._sas:
            headers["Authorization"] = sas_token(f"{self.base}/{self.hub}", *self._sas, ttl_s=SAS_TTL_S)  # never logged
        return headers


def batch_form(payload: bytes) -> bytes:
    """``[{"Body": ...}]``: the payload as text when it is UTF-8 (exact round trip), else base64."""
    try:
        entry: dict[str, Any] = {"Body": payload.decode("utf-8")}
    except UnicodeDecodeError:
        entry = {"Body": base64.b64encode(payload).decode("ascii"), "UserProperties": {BODY_ENCODING: "base64"}}
    return encode_json([entry])


class RestSender:
    """One connection's worth of devices; ``wire_body_bytes`` counts request bodies as sent."""

    def __init__(self, endpoint: RestEndpoint, mode: str, form: str, url: str, connect_timeout_s: float) -> None:
        self._endpoint, self._mode, self._connect_timeout = endpoint, mode, connect_timeout_s
        self._wrap = batch_form if form == "batch" else None
        headers = endpoint.headers(BATCH_CONTENT_TYPE if form == "batch" else SINGLE_CONTENT_TYPE)
        if mode == "new-connection":
            headers["Connection"] = "close"
        self._h2_headers = [(k.lower(), v) for k, v in headers.items()]
        self._head_fields = f"Host: {endpoint.host}:{endpoint.port}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        self._per_device = url == "publisher"
        self._http1: Http1Connection | None = None
        self._h2: Http2Connection | None = None
        self._lock = asyncio.Lock()  # HTTP/1.1: one request at a time on the one connection
        self.wire_body_bytes = 0

    def _path(self, key: str) -> str:
        hub = self._endpoint.hub
        if self._per_device:
            return f"/{hub}/publishers/{quote(key, safe='')}/messages{QUERY}"
        return f"/{hub}/messages{QUERY}"

    async def connect(self) -> RestSender:
        """Open the connection now, as a device does when it starts (``new-connection``: one per request)."""
        if self._mode == "http2":
            await self._http2()
        elif self._mode != "new-connection":
            async with self._lock:
                if self._http1 is None:
                    self._http1 = await self._connect(Http1Connection)
        return self

    async def send(self, key: str, payload: bytes) -> None:
        body = self._wrap(payload) if self._wrap else payload
        path = self._path(key)
        if self._mode == "http2":
            status, text = await (await self._http2()).post(path, body, self._h2_headers)
        else:
            head = f"POST {path} HTTP/1.1\r\n{self._head_fields}Content-Length: {len(body)}\r\n\r\n".encode()
            async with self._lock:
                if self._http1 is None or not self._http1.usable:
                    self._http1 = await self._connect(Http1Connection)
                conn = self._http1
                try:
                    status, text = await conn.request(head, body)
                finally:
                    if self._mode == "new-connection":
                        self._http1 = None
                        await conn.close()
        self.wire_body_bytes += len(body)
        if status != 201:
            raise TransportError(f"gateway answered {status}: {text[:200].decode('utf-8', 'replace')}")

    async def _connect(self, kind: Any) -> Any:
        ep = self._endpoint
        try:
            return await kind.open(ep.host, ep.port, ssl_context=ep.ssl_context(), timeout=self._connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"cannot connect to the gateway at {ep.base}: {exc!r}") from None

    async def _http2(self) -> Http2Connection:
        """The connection, reopened once it failed (GOAWAY, reset): the failed sends stay failed."""
        conn = self._h2
        if conn is not None and not conn.failed:
            return conn
        async with self._lock:
            if self._h2 is None or self._h2.failed:
                self._h2 = await self._connect(Http2Connection)
            return self._h2

    async def close(self) -> None:
        for conn in (self._http1, self._h2):
            if conn is not None:
                await conn.close()
