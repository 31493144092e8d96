"""The local CA helper: a client that trusts it completes a real handshake, any other fails."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from support import need_modules

from iotbench.transports.base import TransportError
from iotbench.transports.servers.tls import local_ca
from iotbench.transports.tls import client_context

pytestmark = pytest.mark.server  # every test here starts a server

need_modules("trustme", extra="http")


async def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, host: str) -> bytes:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname=host), 10
        )
        writer.write(b"reading\n")
        line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        return line
    finally:
        server.close()
        await server.wait_closed()


def test_client_trusting_the_local_ca_completes_a_handshake(tmp_path):
    tls = local_ca(tmp_path)
    assert tls.ca.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert tls.cert.read_bytes().count(b"BEGIN CERTIFICATE") == 1  # the leaf; clients hold the root
    assert oct(tls.key.stat().st_mode & 0o777) == "0o600"
    for host in ("127.0.0.1", "localhost"):
        assert asyncio.run(_handshake(tls.server_context(), tls.client_context(), host)) == b"reading\n"


def test_a_client_trusting_another_ca_is_refused(tmp_path):
    ours, theirs = local_ca(tmp_path / "a"), local_ca(tmp_path / "b")
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(_handshake(ours.server_context(), theirs.client_context(), "127.0.0.1"))


def test_a_missing_ca_file_names_the_file(tmp_path):
    with pytest.raises(TransportError, match="nope.pem"):
        client_context(tmp_path / "nope.pem")
