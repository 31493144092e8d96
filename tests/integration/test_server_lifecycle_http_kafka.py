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
    pytest.param("kafka", {"tls": True}, id="tansu-stunnel"),
]


def _server_of(deployment) -> tuple[list[int], list[int]]:
    """The gateway's or Tansu's ServerProcess, and stunnel in front of Tansu for TLS."""
    server = deployment.started[0]
    processes = [p for p in (server.process, getattr(server, "terminator", None)) if p is not None]
    return [p.pid for p in processes], [p.port for p in processes]


async def _start_then_fail(name: str, options: dict, workdir) -> tuple[list[int], list[int]]:
    transport = get_transport(name)(**options)
    deployment = await start_transport(transport, workdir)
    pids: list[int] = []
    ports: list[int] = []
    opened = []
    try:
        pids, ports = _server_of(deployment)
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
    return pids, ports


@pytest.mark.server
@pytest.mark.parametrize(("name", "options"), SERVERS)
def test_stop_after_an_error_leaves_no_process_and_no_port(name, options, tmp_path):
    pids, ports = asyncio.run(asyncio.wait_for(_start_then_fail(name, options, tmp_path), 60))
    assert all(pids) and all(ports) and len(pids) == (2 if options.get("tls") and name == "kafka" else 1)
    assert_no_leftovers(pids, ports)
    assert list(tmp_path.rglob("*.log")), "the server's log stays in the run folder"
