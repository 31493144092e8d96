"""A cell whose endpoint is dead, silent or misconfigured fails alone, fast, naming why.

For every transport with a network endpoint: a dead port (connection refused) fails at
once, a silent one (the kernel completes the handshake, nobody speaks) within the cell's
``connect_timeout_s``. Every case runs as a small matrix whose next cell (in-process) must
still run and lose nothing. A bad option value never gets that far: the spec is refused
when it is loaded, naming the option and the fix.
"""

from __future__ import annotations

import time

import pytest
from support import need_modules
from transport_faults import dead_port, run_with, silent_endpoint

# transport -> (its endpoint option, address template, dead-port message, silent-endpoint message)
ENDPOINTS = {
    "mqtt": (
        "url",
        "mqtt://127.0.0.1:{port}",
        "cannot connect to 127.0.0.1:{port}",
        "no CONNACK from 127.0.0.1:{port} within 1 s",
    ),
    "amqp": (
        "url",
        "amqp://127.0.0.1:{port}",
        "amqp: cannot connect to 127.0.0.1:{port}: Connection refused",
        "no AMQP open/attach from 127.0.0.1:{port} within 1 s",
    ),
    "http": ("endpoint", "http://127.0.0.1:{port}", "127.0.0.1:{port}", "127.0.0.1:{port} did not answer"),
    "kafka": ("bootstrap", "127.0.0.1:{port}", "127.0.0.1:{port}", "127.0.0.1:{port} did not answer"),
}
EXTRAS = {
    "mqtt": ("paho.mqtt", "mqtt"),
    "amqp": ("proton", "amqp"),
    "http": ("aiohttp", "http"),
    "kafka": ("aiokafka", "kafka"),
}


def _failed_then_ok(results, transport: str):
    *failed, last = results
    assert last.transport == "inprocess" and last.status == "ok" and last.events_lost == 0
    for cell in failed:
        assert cell.transport == transport and cell.status == "failed"
        assert cell.events_sent == 0 and cell.events_lost == 0
    return failed


@pytest.mark.parametrize("kind", ["dead", "silent"])
@pytest.mark.parametrize("transport", sorted(ENDPOINTS))
def test_an_unreachable_endpoint_fails_its_cell_and_the_matrix_goes_on(transport, kind, tmp_path):
    need_modules(EXTRAS[transport][0], extra=EXTRAS[transport][1])
    option, address, dead_message, silent_message = ENDPOINTS[transport]
    t0 = time.monotonic()
    if kind == "dead":
        port = dead_port()
        results = run_with(transport, {option: address.format(port=port), "connect_timeout_s": 1.0}, tmp_path)
        expected = dead_message.format(port=port)
    else:
        with silent_endpoint() as port:
            results = run_with(transport, {option: address.format(port=port), "connect_timeout_s": 1.0}, tmp_path)
        expected = silent_message.format(port=port)
    [failed] = _failed_then_ok(results, transport)
    assert expected in failed.error, failed.error
    if kind == "silent" and transport in ("http", "kafka"):
        assert "connect_timeout_s" in failed.error  # names the knob
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize(
    ("transport", "option", "message"),
    [
        ("mqtt", {"qos": [2, 1]}, "'transport_options.mqtt.qos': mqtt qos=2 is not known; use one of 0, 1"),
        ("amqp", {"settled": ["yes", False]}, "'transport_options.amqp.settled': amqp settled='yes' is not a boolean"),
        ("http", {"mode": ["http3", "keep-alive"]}, "'transport_options.http.mode': http mode='http3'"),
    ],
)
def test_a_bad_option_is_refused_when_the_spec_is_loaded(transport, option, message, tmp_path):
    from iotbench.model.spec import SpecError

    need_modules(EXTRAS[transport][0], extra=EXTRAS[transport][1])
    endpoint, address, _, _ = ENDPOINTS[transport]
    with pytest.raises(SpecError) as refused:
        run_with(transport, {endpoint: address.format(port=dead_port()), **option}, tmp_path)
    assert message in str(refused.value)
    assert not list(tmp_path.iterdir())  # no cell ran, nothing was written
