"""Issue 12, the bridged path: MQTT -> mosquitto -> bridge -> local Event Hubs endpoint -> consumer -> cold store.

``mqtt`` with ``bridge = "eventhubs"`` runs the bridge as a server of the cell: every event the
devices sent must reach the cold store through Event Hubs, nothing lost, at batch 1 and 100;
the bridge is a process of the cell's servers (its CPU counted) and its hop shows in the latency.
"""

from __future__ import annotations

import asyncio

import pytest
from support import need_modules, need_server

need_modules("azure.eventhub", extra="eventhubs")

from iotbench.model.spec import parse_spec  # noqa: E402
from iotbench.pipeline.runner import run_cell  # noqa: E402

pytestmark = pytest.mark.server  # every test here starts servers


def _spec(batch: int, options: dict) -> object:
    return parse_spec(
        {
            "codecs": ["json"],
            "transports": ["mqtt"],
            "batch": [batch],
            "connections": [2],
            "devices": [200],
            "interval_s": [1.0],
            "duration_s": 2.0,
            "warmup_s": 1.0,
            "drain_timeout_s": 15.0,
            "transport_options": {"mqtt": options} if options else {},
        }
    )


def _run(batch: int, options: dict, folder):
    spec = _spec(batch, options)
    cell = spec.cells()[0]
    result = asyncio.run(run_cell(spec, cell, folder))
    if result.status != "ok" and "not installed" in (result.error or ""):
        need_server(result.error)
    return cell, result


@pytest.mark.parametrize("batch", [1, 100])
def test_the_bridged_cell_stores_every_event_through_event_hubs(batch, tmp_path):
    cell, result = _run(batch, {"bridge": "eventhubs"}, tmp_path / "cell")
    assert "[bridge=eventhubs]" in cell.id
    assert result.status == "ok", result.error
    assert result.events_sent > 0 and result.events_stored == result.events_sent, result
    assert result.events_lost == result.events_failed == 0
    counters = result.transport_counters
    # the bridge forwarded every send (a gateway's batch stays one message) and the hub took them
    assert counters.get("server_bridge_forwarded", 0) >= result.sends > 0, counters
    assert counters.get("server_bridge_acked") == counters.get("server_bridge_forwarded"), counters
    assert counters.get("server_events", 0) >= result.sends, counters
    assert list((tmp_path / "cell" / "server" / "bridge").glob("bridge.log"))


def test_the_bridge_hop_shows_in_the_end_to_end_latency(tmp_path):
    _, plain = _run(1, {}, tmp_path / "plain")
    _, bridged = _run(1, {"bridge": "eventhubs"}, tmp_path / "bridged")
    assert plain.status == bridged.status == "ok", (plain.error, bridged.error)
    p50 = (plain.latency_ms["e2e_received"]["p50"], bridged.latency_ms["e2e_received"]["p50"])
    p99 = (plain.latency_ms["e2e_received"]["p99"], bridged.latency_ms["e2e_received"]["p99"])
    print(f"e2e ms plain mqtt p50 {p50[0]:.2f} p99 {p99[0]:.2f}; bridged p50 {p50[1]:.2f} p99 {p99[1]:.2f}")
    assert p50[1] > p50[0], "the bridged path is not slower: the hop was not taken"
    servers = bridged.cpu_us_per_event.get("servers") or {}
    print(f"server CPU us/event, bridged: {servers}")
    assert servers.get("bridge", 0) > 0, bridged.cpu_us_per_event  # the bridge's CPU counts as a server's
