"""A minimal HTTP/1.1 client on one connection: one request at a time, responses parsed by httptools.

Why not aiohttp for the devices' requests: on this 2-core machine aiohttp spent
~170-200 us of client CPU per POST (measured with the gateway on the same cores), so
one keep-alive connection topped out below 2k requests/s and the cell measured
aiohttp rather than HTTP/1.1. This client writes each request as one preformatted
buffer and parses the response with httptools (the C parser uvicorn uses): what is
left is the protocol's own cost -- headers, a round trip per request, and for
``new-connection`` a TCP (and TLS) handshake per request.

    >>> conn = await Http1Connection.open("127.0.0.1", 8080)                  # doctest: +SKIP
    >>> status, body = await conn.request(b"POST /hub/messages HTTP/1.1\\r\\n...", payload)
"""

from __future__ import annotations

import asyncio
import ssl

import httptools

__all__ = ["Http1Connection", "Http1Error"]


class Http1Error(ConnectionError):
    """The connection failed or the server sent something that is not an HTTP/1.1 response."""


class Http1Connection(asyncio.Protocol):
    """One connection; ``request`` waits for the previous response (no pipelining)."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._body = bytearray()
        self._lock = asyncio.Lock()
        self._error: Exception | None = None
        self.keep_alive = True

    @classmethod
    async def open(
        cls, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None, timeout: float = 10.0
    ) -> Http1Connection:
        if ssl_context is not None:
            ssl_context.set_alpn_protocols(["http/1.1"])
        async with asyncio.timeout(timeout):
            _, proto = await asyncio.get_running_loop().create_connection(
                cls, host, port, ssl=ssl_context, server_hostname=host if ssl_context else None
            )
        return proto

    @property
    def usable(self) -> bool:
        """False once the server closed, said ``Connection: close``, or the connection failed."""
        return self._error is None and self.keep_alive

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        """Send ``head`` (request line + headers + blank line) and ``body``; the (status, body)."""
        async with self._lock:
            if self._error is not None:
                raise self._error
            self._waiter = self._loop.create_future()
            self._transport.write(head + body)  # type: ignore[union-attr]  # one write: one segment
            try:
                return await self._waiter
            finally:
                self._waiter = None

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._fail(Http1Error("connection closed by the client"))

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Http1Error(f"not an HTTP/1.1 response: {exc}"))
            if self._transport is not None:
                self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(Http1Error(f"connection lost ({exc or 'closed by the server'})"))

    # -- httptools callbacks ----------------------------------------------------------

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.keep_alive = self._parser.should_keep_alive()
        body, self._body = bytes(self._body), bytearray()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result((self._parser.get_status_code(), body))

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
