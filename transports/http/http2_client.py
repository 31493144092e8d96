"""A minimal HTTP/2 client on one connection, built on the ``h2`` state machine.

Why not httpx: on this machine httpx's HTTP/2 path reached ~1.5k requests/s on one
connection with 64 streams (FACTS.md: 1.25k with TLS) -- below Fabrikam's 1,667
events/s, so a cell would measure httpx, not HTTP/2. This client does only what the
ingest transport needs: POST a body on a new stream of one connection, respecting the
server's stream limit and flow-control windows, and return the status and body.

    >>> conn = await Http2Connection.open("127.0.0.1", 8443, ssl_context=ctx)   # doctest: +SKIP
    >>> status, body = await conn.post("/hub/messages", payload, [("content-type", "...")])
    >>> await conn.close()
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Sequence

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

__all__ = ["Http2Connection", "Http2Error"]

RECEIVE_WINDOW = 16 * 1024 * 1024  # responses are tiny; a large window avoids WINDOW_UPDATE chatter


class Http2Error(ConnectionError):
    """The connection or a stream failed (reset, GOAWAY, closed)."""


class _Stream:
    __slots__ = ("done", "status", "body")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[None] = loop.create_future()
        self.status = 0
        self.body = bytearray()


class Http2Connection(asyncio.Protocol):
    """One HTTP/2 connection; concurrent ``post`` calls become concurrent streams."""

    def __init__(self, authority: str, scheme: str) -> None:
        self._authority, self._scheme = authority, scheme
        self._h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        # h2 never indexes ``authorization`` (a security default), so the ~250-character SAS
        # token is Huffman-coded in pure Python on every request (~30 us): memoize the coder.
        # The bytes on the wire stay exactly what h2 would send.
        coder = self._h2.encoder.huffman_coder
        coder.encode = functools.lru_cache(maxsize=256)(coder.encode)  # type: ignore[method-assign]
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, _Stream] = {}
        self._changed = asyncio.Event()  # a window opened, a stream ended or a setting changed
        self._error: Exception | None = None

    @classmethod
    async def open(
        cls, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None, timeout: float = 10.0
    ) -> Http2Connection:
        """Connect (TLS with ALPN ``h2`` when a context is given, else clear-text prior knowledge)."""
        if ssl_context is not None:
            ssl_context.set_alpn_protocols(["h2"])
        authority = f"{host}:{port}"
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            transport, proto = await loop.create_connection(
                lambda: cls(authority, "https" if ssl_context else "http"),
                host,
                port,
                ssl=ssl_context,
                server_hostname=host if ssl_context else None,
            )
        if ssl_context is not None and transport.get_extra_info("ssl_object").selected_alpn_protocol() != "h2":
            transport.close()
            raise Http2Error(f"{authority} did not agree to HTTP/2 over TLS (ALPN); is it an HTTP/2 server?")
        return proto

    @property
    def failed(self) -> bool:
        """True once the connection is unusable (lost, GOAWAY, closed)."""
        return self._error is not None

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._h2.local_settings.update({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: RECEIVE_WINDOW})
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(RECEIVE_WINDOW)
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail(Http2Error(f"HTTP/2 protocol error from the server: {exc}"))
            return
        for event in events:
            if isinstance(event, h2.events.ResponseReceived):
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.status = int(dict(event.headers).get(":status", 0))  # type: ignore[call-overload]
            elif isinstance(event, h2.events.DataReceived):
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.body += event.data
                self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self._finish(event.stream_id, None)
            elif isinstance(event, h2.events.StreamReset):
                self._finish(event.stream_id, Http2Error(f"stream reset by the server (error {event.error_code})"))
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._fail(Http2Error(f"server closed the HTTP/2 connection (GOAWAY, error {event.error_code})"))
            elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                self._changed.set()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(Http2Error(f"HTTP/2 connection lost ({exc or 'closed by the server'})"))

    # -- requests ---------------------------------------------------------------------

    async def post(self, path: str, body: bytes, headers: Sequence[tuple[str, str]]) -> tuple[int, bytes]:
        """POST ``body`` on a new stream; the (status, response body) once the stream ends."""
        if self._error is not None:
            raise self._error
        while len(self._streams) >= self._h2.remote_settings.max_concurrent_streams:
            await self._wait_change()
        stream_id = self._h2.get_next_available_stream_id()
        stream = self._streams[stream_id] = _Stream(self._loop)
        try:
            self._h2.send_headers(
                stream_id,
                [
                    (":method", "POST"),
                    (":path", path),
                    (":scheme", self._scheme),
                    (":authority", self._authority),
                    ("content-length", str(len(body))),
                    *headers,
                ],
                end_stream=not body,
            )
            view, sent = memoryview(body), 0
            while sent < len(body):
                room = min(
                    self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size, len(body) - sent
                )
                if room <= 0:
                    self._flush()
                    await self._wait_change()
                    continue
                self._h2.send_data(stream_id, view[sent : sent + room].tobytes(), end_stream=sent + room == len(body))
                sent += room
            self._flush()
            await stream.done
        except h2.exceptions.H2Error as exc:
            raise Http2Error(f"HTTP/2 stream failed: {exc!r}") from None
        finally:
            self._streams.pop(stream_id, None)
            self._changed.set()
        return stream.status, bytes(stream.body)

    async def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            try:
                self._h2.close_connection()
                self._flush()
            except h2.exceptions.H2Error:
                pass
            self._transport.close()
        self._fail(Http2Error("HTTP/2 connection closed by the client"))

    # -- internals --------------------------------------------------------------------

    async def _wait_change(self) -> None:
        if self._error is not None:
            raise self._error
        self._changed.clear()
        await self._changed.wait()
        if self._error is not None:
            raise self._error

    def _finish(self, stream_id: int, error: Exception | None) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None and not stream.done.done():
            if error is None:
                stream.done.set_result(None)
            else:
                stream.done.set_exception(error)
        self._changed.set()

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        for stream_id in list(self._streams):
            self._finish(stream_id, error)
        self._changed.set()

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)
