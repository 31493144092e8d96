"""The connection model of the HTTP transport: one connection per sender, reused or not.

A counting TCP endpoint that answers every request with ``201 Created`` stands in for
the gateway here, because what is checked is the client's connection behaviour
(how many TCP connections, how many at once), which the real servers do not report.
"""

from __future__ import annotations

import asyncio

from support import need_modules

need_modules("httptools", extra="http")

from iotbench.transports.http.transport import HttpTransport  # noqa: E402

SENDS = 30


class _Counter:
    def __init__(self) -> None:
        self.connections = self.open = self.most_open = self.requests = 0
        self.heads: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                await reader.readexactly(length)
                self.requests += 1
                self.heads.append(head)
                close = b"connection: close" in head.lower()
                writer.write(
                    b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n"
                    + (b"Connection: close\r\n" if close else b"")
                    + b"\r\n"
                )
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


async def _exercise(options: dict) -> _Counter:
    counter = _Counter()
    server = await asyncio.start_server(counter.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = HttpTransport(endpoint=f"http://127.0.0.1:{port}", **options)
    await transport.start({})  # an external endpoint: nothing is started
    try:
        sender = await transport.open_sender(0)
        # concurrent sends, as the publisher issues them: they share the sender's one connection
        await asyncio.wait_for(asyncio.gather(*(sender.send(f"dev-{i}", b"reading") for i in range(SENDS))), 30)
        await sender.close()
    finally:
        await transport.stop()
        server.close()
        await server.wait_closed()
    return counter


def test_keep_alive_sends_everything_over_one_connection():
    counter = asyncio.run(_exercise({"mode": "keep-alive"}))
    assert counter.requests == SENDS and counter.connections == 1


def test_new_connection_opens_one_per_request_never_two_at_once():
    counter = asyncio.run(_exercise({"mode": "new-connection"}))
    assert counter.requests == SENDS and counter.connections == SENDS and counter.most_open == 1


def test_requests_carry_the_event_hubs_headers():
    counter = asyncio.run(_exercise({"mode": "keep-alive"}))
    head = counter.heads[0].decode()
    assert head.startswith("POST /telemetry/publishers/dev-") and "/messages?timeout=60&api-version=2014-01 " in head
    assert "Authorization: SharedAccessSignature sr=" in head and "&skn=" in head
    assert "Content-Type: application/atom+xml;type=entry;charset=utf-8" in head
