"""CoAP: block-wise batches, life cycle, dead endpoints (the shared contract test covers delivery)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from support import arrived, assert_no_leftovers, need_modules, start_transport

need_modules("aiocoap", extra="coap")

from iotbench.transports.base import TransportError  # noqa: E402
from iotbench.transports.coap import CoapTransport  # noqa: E402
from iotbench.transports.servers.process import free_port  # noqa: E402


async def _batches_then_stop(workdir) -> tuple[list[bytes], int, int]:
    transport = CoapTransport()
    deployment = await start_transport(transport, workdir)
    gateway = deployment.started[0]._process
    pid, port = gateway.pid, gateway.port
    received: list[bytes] = []
    try:
        receiver = await transport.open_receiver(received.append)
        sender = await transport.open_sender(0)
        batches = [bytes([i]) * 5000 for i in range(8)]  # five blocks each, sent concurrently
        await asyncio.wait_for(asyncio.gather(*(sender.send("gateway-0", b) for b in batches)), 30)
        await arrived(received, len(batches))
        await sender.close()
        await receiver.close()
    finally:
        await deployment.stop()
    return received, pid, port


@pytest.mark.server
def test_concurrent_block_wise_batches_arrive_whole_and_stop_leaves_nothing(tmp_path):
    received, pid, port = asyncio.run(_batches_then_stop(tmp_path))
    assert sorted(received) == [bytes([i]) * 5000 for i in range(8)]
    assert_no_leftovers([pid], [port])


def test_a_dead_or_silent_endpoint_fails_at_once_with_the_reason(tmp_path):
    async def open_at(port: int) -> None:
        transport = CoapTransport(endpoint=f"127.0.0.1:{port}", connect_timeout_s=1.0)
        await transport.start({})
        await transport.open_receiver(lambda payload: None)

    dead = free_port()
    with pytest.raises(TransportError, match=f"127.0.0.1:{dead}.*is it running"):
        asyncio.run(open_at(dead))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        with pytest.raises(TransportError, match="did not answer within 1 s"):
            asyncio.run(open_at(silent.getsockname()[1]))
