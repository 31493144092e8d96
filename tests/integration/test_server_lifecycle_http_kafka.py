"""Servers of the HTTP and Kafka transports: nothing left behind.

Starting and stopping the gateway (uvicorn, granian with TLS, hypercorn) and Tansu leaves no
process and no listening port, also when the cell errs with the event stream still
open. Dead and silent endpoints: tests/integration/test_transport_unreachable.py.
"""

from __future__ import annotations

import asyncio

import pytest
from support import assert_no_leftovers, need_modules, start_transport

from iotbench.transports import get_transport

need_modules("aiohttp", extra="http")
need_modules("aiokafka", extra="kafka")

SERVERS = [
    pytest.param("http", {"mode": "keep-alive"}, id="uvicorn"),
    pytest.param("http", {"mode": "http2", "tls": True, "server": "granian"}, id="granian-tls"),
    pytest.param("http", {"mode": "http2", "server": "hypercorn"}, id="hypercorn"),
    pytest.param("kafka", {}, id="tansu"),
]


def _server_of(deployment) -> tuple[int, int]:
    process = deployment.started[0].process  # the gateway's or Tansu's ServerProcess
    return process.pid, process.port


async def _start_then_fail(name: str, options: dict, workdir) -> tuple[int, int]:
    transport = get_transport(name)(**options)
    deployment = await start_transport(transport, workdir)
    pid = port = 0
    opened = []
    try:
        pid, port = _server_of(deployment)
        opened.append(await transport.open_receiver(lambda payload: None))
        opened.append(await transport.open_sender(0))
        await opened[-1].send("b0000-a001-s1", b"reading")
        raise RuntimeError("the cell failed half-way")
    except RuntimeError:
        pass
    finally:
        await deployment.stop()  # first, with the stream and the sender still open
        for client in opened:
            await client.close()
    return pid, port


@pytest.mark.server
@pytest.mark.parametrize(("name", "options"), SERVERS)
def test_stop_after_an_error_leaves_no_process_and_no_port(name, options, tmp_path):
    pid, port = asyncio.run(asyncio.wait_for(_start_then_fail(name, options, tmp_path), 60))
    assert pid and port
    assert_no_leftovers([pid], [port])
    assert list(tmp_path.rglob("*.log")), "the server's log stays in the run folder"
