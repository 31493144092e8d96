"""Per-event costs from the sides' readings: wire layers, CPU per side, several processes merged."""

from __future__ import annotations

import pytest

from iotbench.pipeline.costs import cpu_us_per_event, datagram_wire_per_event, peak_rss_mb, wire_per_event
from iotbench.pipeline.snapshots import merge_usage
from iotbench.pipeline.sockets import TcpCounters
from iotbench.pipeline.usage import Reading


def _usage(scale: int = 1) -> dict:
    def tcp(out: int, inn: int, segs_out: int, segs_in: int) -> TcpCounters:
        return TcpCounters(1 * scale, out * scale, inn * scale, 52 * segs_out * scale, 52 * segs_in * scale,
                           segs_out * scale, segs_in * scale, 0)  # fmt: skip

    return {
        "opened": Reading(tcp=tcp(300, 200, 4, 3)).to_dict(),
        "start": Reading(1.0 * scale, 100 * scale, 20_000 * scale, 100 * scale, tcp(30_300, 600, 104, 103)).to_dict(),
        "end": Reading(
            1.5 * scale, 1100 * scale, 220_000 * scale, 1100 * scale, tcp(270_300, 4600, 1104, 1103)
        ).to_dict(),
        "closing": Reading(tcp=tcp(280_000, 4800, 1200, 1200)).to_dict(),
        "closed": Reading(tcp=tcp(280_002, 4801, 1202, 1201)).to_dict(),
        "peak_rss_mb": 40.0 * scale,
    }


def test_window_layers_per_event():
    wire = wire_per_event(_usage(), events_sent=1200)
    assert wire is not None and wire["events"] == 1000
    # 240,000 TCP bytes up for 200,000 payload bytes over 1,000 readings; 1,000 segments each way
    assert wire["up"] == {"payload": 200.0, "framing": 40.0, "tcp_ip": 52.0, "total": 292.0, "segments": 1.0}
    assert wire["down"] == {"framing": 4.0, "tcp_ip": 52.0, "total": 56.0, "segments": 1.0}
    assert wire["setup"] == {"connections": 1, "up_bytes": 300 + 4 * 52, "down_bytes": 200 + 3 * 52,
                             "per_event": round((508 + 356) / 1200, 2)}  # fmt: skip
    assert wire["teardown"]["up_bytes"] == 2 + 2 * 52 and wire["teardown"]["down_bytes"] == 1 + 52


def test_processes_add_and_the_per_event_figures_stay():
    one, two = wire_per_event(_usage(), 1200), wire_per_event(merge_usage([_usage(), _usage()]), 2400)
    assert two is not None and one is not None
    assert two["events"] == 2 * one["events"] and two["up"] == one["up"] and two["down"] == one["down"]
    assert two["setup"]["connections"] == 2 and two["setup"]["up_bytes"] == one["setup"]["up_bytes"]
    assert merge_usage([_usage(), _usage()])["peak_rss_mb"] == 80.0


def test_cpu_per_side_and_memory():
    receive = {"start": Reading(2.0, 50).to_dict(), "end": Reading(2.2, 1050).to_dict(), "peak_rss_mb": 30.0}
    cpu = cpu_us_per_event(_usage(), receive, {"mosquitto": 0.1})
    assert cpu == {"client": 500.0, "server": 100.0, "consumer": 200.0}
    two_servers = cpu_us_per_event(_usage(), receive, {"eventhubs": 0.1, "azurite": 0.05})
    assert two_servers["server"] == pytest.approx(150.0) and two_servers["servers"]["azurite"] == 50.0
    assert peak_rss_mb(_usage(), receive, {"mosquitto": 8.0}) == {"client": 40.0, "server": 8.0, "consumer": 30.0}
    assert cpu_us_per_event({}, {}, {}) == {"client": None, "server": None, "consumer": None}


def test_no_tcp_connection_is_no_wire_and_udp_comes_from_datagrams():
    inprocess = _usage()
    for name in ("start", "end"):
        inprocess[name] = {**inprocess[name], "tcp": TcpCounters().to_dict()}
    assert wire_per_event(inprocess, 1200) is None
    counters = {"server_udp_datagrams_up": 100, "server_udp_bytes_up": 24_000,
                "server_udp_datagrams_down": 100, "server_udp_bytes_down": 600}  # fmt: skip
    udp = datagram_wire_per_event(counters, 200.0, 100)
    assert udp is not None and udp["source"] == "datagrams"
    assert udp["up"] == {"payload": 200.0, "framing": 40.0, "tcp_ip": 28.0, "total": 268.0, "segments": 1.0}
    assert udp["down"]["framing"] == 6.0 and udp["down"]["total"] == 34.0
    assert datagram_wire_per_event({}, 200.0, 100) is None
