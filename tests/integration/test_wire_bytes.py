"""Measured wire bytes against the protocol's own arithmetic (issue 11).

A cell's ``wire`` comes from the kernel's TCP counters of the sending side's sockets
(``iotbench.pipeline.sockets``); these cells check it against what the protocol must put on the
wire per event, once TCP/IP headers are separated, within 5 %.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from support import need_server

from iotbench.model.spec import parse_spec
from iotbench.pipeline.runner import run_matrix
from iotbench.pipeline.sockets import TcpCounters, held, tcp_counters

pytestmark = pytest.mark.server
TOLERANCE = 0.05


def _cell(transport: str, options: dict, out: Path) -> dict:
    spec = parse_spec(
        {
            "codecs": ["json"],
            "transports": [transport],
            "batch": [1],
            "devices": 300,
            "interval_s": 1.0,
            "duration_s": 3.0,
            "warmup_s": 1.0,
            "transport_options": {transport: options},
        }
    )
    result = run_matrix(spec, out)[0].to_dict()
    if result["status"] != "ok" and "not installed" in (result["error"] or ""):
        need_server(result["error"])
    assert result["status"] == "ok", result["error"]
    assert result["events_lost"] == 0
    return result


def _a_device_id(out: Path, result: dict) -> str:
    part = next((out / result["cold_store"]).glob("part-*.jsonl.gz"))
    return json.loads(gzip.decompress(part.read_bytes()).splitlines()[0])["device_id"]


def _close(measured: float, expected: float) -> bool:
    return abs(measured - expected) <= TOLERANCE * expected


def test_mqtt_qos1_publish_and_puback_match_the_protocol(tmp_path):
    result = _cell("mqtt", {"qos": 1}, tmp_path)
    wire, payload = result["wire"], result["payload_bytes"]
    topic = f"devices/{_a_device_id(tmp_path, result)}/telemetry"  # batch 1: a device's own topic
    remaining = 2 + len(topic) + 2 + payload["mean"]  # topic length, topic, packet id, payload
    assert 128 <= 2 + len(topic) + 2 + payload["min"] and 2 + len(topic) + 2 + payload["max"] < 16384
    expected_up = 1 + 2 + remaining  # fixed header byte + a 2-byte remaining length + the rest
    measured_up = wire["up"]["payload"] + wire["up"]["framing"]
    assert _close(measured_up, expected_up), (measured_up, expected_up, wire)
    assert _close(wire["down"]["framing"], 4.0), wire  # one PUBACK per publish
    assert wire["up"]["payload"] == pytest.approx(payload["mean"], rel=0.01)  # the window's events, like the cell's
    # TCP/IP apart: 52 B a segment on loopback (20 IP + 20 TCP + 12 timestamps), at most a segment an event
    assert 0 < wire["up"]["tcp_ip"] <= 52 * 1.05 and wire["up"]["tcp_ip"] == pytest.approx(
        52 * wire["up"]["segments"], rel=0.01
    )
    assert wire["setup"]["connections"] == 1 and wire["setup"]["up_bytes"] > 14  # at least a CONNECT
    assert wire["teardown"]["up_bytes"] >= 2  # DISCONNECT is 2 bytes
    cpu = result["cpu_us_per_event"]
    assert all(cpu[side] and cpu[side] > 0 for side in ("client", "server", "consumer")), cpu
    assert all(result["peak_rss_mb"][side] > 1 for side in ("client", "server", "consumer"))


def test_http_post_matches_its_known_head(tmp_path):
    result = _cell(
        "http", {"mode": "keep-alive", "auth": "none", "form": "single", "hub": "hub", "url": "hub"}, tmp_path
    )
    wire, payload = result["wire"], result["payload_bytes"]
    # one POST of the Event Hubs REST shape: the request line, Host (a free port: five digits, 32768-60999),
    # Content-Type and Content-Length, then the body
    head = (
        "POST /hub/messages?timeout=60&api-version=2014-01 HTTP/1.1\r\nHost: 127.0.0.1:45678\r\n"
        "Content-Type: application/atom+xml;type=entry;charset=utf-8\r\n"
        f"Content-Length: {round(payload['mean'])}\r\n\r\n"
    )
    expected_up = len(head) + payload["mean"]
    measured_up = wire["up"]["payload"] + wire["up"]["framing"]
    assert _close(measured_up, expected_up), (measured_up, expected_up, head, wire)
    assert wire["down"]["framing"] >= len("HTTP/1.1 201 Created\r\n\r\n")  # a response per request


def test_counters_follow_a_socket_pair_exactly():
    """The reader itself: a loopback pair, known bytes each way, counted on the client socket."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    try:
        before = tcp_counters([client])
        client.sendall(b"x" * 1000)
        assert peer.recv(1000, socket.MSG_WAITALL) == b"x" * 1000
        peer.sendall(b"y" * 4)
        assert client.recv(4) == b"y" * 4
        used = tcp_counters([client]).minus(before)
        assert (used.bytes_out, used.bytes_in) == (1000, 4)
        assert used.header_out == 52 * used.segments_out  # loopback negotiates timestamps
        assert tcp_counters().connections >= 2  # this process's own sockets, both ends
        kept = held()
        assert len(kept) >= 2 and all(isinstance(s, socket.socket) for s in kept)
        for sock in kept:
            sock.close()
        assert TcpCounters().plus(used) == used
    finally:
        for sock in (client, peer, server):
            sock.close()


def test_coap_counts_its_datagrams(tmp_path):
    """UDP has no per-socket byte counters: the gateway counts each datagram, one request and one
    response per reading at batch 1, 28 B of UDP/IP headers each."""
    result = _cell("coap", {}, tmp_path)
    wire = result["wire"]
    assert wire["source"] == "datagrams"
    assert wire["up"]["segments"] == pytest.approx(1.0, abs=0.02) and wire["down"]["segments"] == pytest.approx(
        1.0, abs=0.02
    )
    assert wire["up"]["tcp_ip"] == pytest.approx(28.0, rel=0.02)
    # a CoAP request: 4 B header + token + Uri-Path "telemetry" + Uri-Query "d=<device>" (+ payload marker)
    assert 4 + len("telemetry") + 20 <= wire["up"]["framing"] <= 80
    assert 4 <= wire["down"]["framing"] <= 16  # 2.04 Changed: header + token
