"""Servers of the HTTP and Kafka transports: nothing left behind, dead endpoints fail fast.

Starting and stopping the gateway (uvicorn, granian with TLS, hypercorn) and Tansu leaves no
process and no listening port, also when the cell errs with the event stream still
open. A cell pointed at a dead port or a silent endpoint fails within its connect
timeout with a reason that names the endpoint, and the matrix goes on.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from iotbench.runner import run_cell, run_matrix
from iotbench.spec import parse_spec
from iotbench.transports import get_transport
from iotbench.transports.servers import free_port
from support import assert_no_leftovers, start_transport

pytest.importorskip("aiohttp")
pytest.importorskip("aiokafka")

SERVERS = [
    pytest.param("http", {"mode": "keep-alive"}, id="uvicorn"),
    pytest.param("http", {"mode": "http2", "tls": True, "server": "granian"}, id="granian-tls"),
    pytest.param("http", {"mode": "http2", "server": "hypercorn"}, id="hypercorn"),
    pytest.param("kafka", {}, id="tansu"),
]


def _server_of(transport) -> tuple[int, int]:
    server = getattr(transport, "_gateway", None) or getattr(transport, "_broker", None)
    process = getattr(server, "process", server)  # a Gateway/TansuBroker wraps its ServerProcess
    return process.pid, process.port


async def _start_then_fail(name: str, options: dict, workdir) -> tuple[int, int]:
    transport = get_transport(name)(**options)
    await start_transport(transport, workdir)
    pid = port = 0
    opened = []
    try:
        pid, port = _server_of(transport)
        opened.append(await transport.open_receiver(lambda payload: None))
        opened.append(await transport.open_sender(0))
        await opened[-1].send("b0000-a001-s1", b"reading")
        raise RuntimeError("the cell failed half-way")
    except RuntimeError:
        pass
    finally:
        await transport.stop()  # first, with the stream and the sender still open
        for client in opened:
            await client.close()
    return pid, port


@pytest.mark.server
@pytest.mark.parametrize(("name", "options"), SERVERS)
def test_stop_after_an_error_leaves_no_process_and_no_port(name, options, tmp_path):
    pid, port = asyncio.run(asyncio.wait_for(_start_then_fail(name, options, tmp_path), 60))
    assert pid and port
    assert_no_leftovers([pid], [port])
    assert list(tmp_path.glob("*.log")), "the server's log stays in the run folder"


@pytest.fixture
def silent_endpoint():
    """A port that accepts TCP connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def _spec(transport: str, options: dict) -> object:
    return parse_spec({
        "codecs": ["json"], "transports": [transport, "inprocess"], "batch": [1], "devices": [100],
        "interval_s": [1], "duration_s": 1, "warmup_s": 0, "drain_timeout_s": 2,
        "transport_options": {transport: {**options, "connect_timeout_s": 2.0}},
    })


CASES = [
    pytest.param("http", "endpoint", "http://127.0.0.1:{port}", "dead", id="http-dead-port"),
    pytest.param("http", "endpoint", "http://127.0.0.1:{port}", "silent", id="http-silent"),
    pytest.param("kafka", "bootstrap", "127.0.0.1:{port}", "dead", id="kafka-dead-port"),
    pytest.param("kafka", "bootstrap", "127.0.0.1:{port}", "silent", id="kafka-silent"),
]


@pytest.mark.parametrize(("transport", "option", "address", "kind"), CASES)
def test_an_unreachable_endpoint_fails_its_cell_quickly_and_the_matrix_goes_on(
        transport, option, address, kind, silent_endpoint, tmp_path):
    port = silent_endpoint if kind == "silent" else free_port()
    spec = _spec(transport, {option: address.format(port=port)})
    t0 = time.monotonic()
    results = run_matrix(spec, tmp_path / "run")
    failed, next_cell = results
    assert failed.transport == transport and failed.status == "failed"
    assert f"127.0.0.1:{port}" in failed.error, failed.error  # names the endpoint
    if kind == "silent":
        assert "did not answer" in failed.error and "connect_timeout_s" in failed.error
    assert failed.events_lost == 0 and failed.events_sent == 0
    assert next_cell.transport == "inprocess" and next_cell.status == "ok" and next_cell.events_lost == 0
    assert time.monotonic() - t0 < 60


def test_a_bad_option_value_fails_the_cell_with_the_fix(tmp_path):
    spec = _spec("http", {"mode": "http3"})
    result = asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell"))
    assert result.status == "failed"
    assert "mode='http3'" in result.error and "keep-alive" in result.error
