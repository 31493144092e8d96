"""The connection's own cost (iotbench.studies.connection_cost) against a real mosquitto."""

from __future__ import annotations

import asyncio

import pytest
from support import start_transport

from iotbench.pipeline.sockets import tcp_counters
from iotbench.studies.connection_cost import READING, _Connections, _sleeping
from iotbench.transports.mqtt import MqttTransport

IDLE_S = 5.0


@pytest.mark.server
def test_idle_mqtt_connections_pay_one_ping_and_its_answer_each_keepalive(tmp_path):
    """5 connections, keep-alive 1 s, nothing to send for 5 s: ~5 PINGREQ (2 B) and PINGRESP (2 B)
    each, and 2-3 segments of TCP/IP headers per ping (the request, the answer, perhaps an ACK)."""

    async def scenario():
        deployment = await start_transport(MqttTransport(qos=1, keepalive_s=1), tmp_path / "server")
        try:
            ports = {e.port for e in deployment.endpoints.values()}
            conns = _Connections(ports)
            senders = [await deployment.transport.open_sender(k) for k in range(5)]
            await asyncio.sleep(0.3)
            socks = conns.collect()
            before = tcp_counters(socks)
            await asyncio.sleep(IDLE_S)
            used = tcp_counters(socks).minus(before)
            for sender in senders:
                await sender.close()
            conns.release()
            return len(socks), used
        finally:
            await deployment.stop()

    connections, used = asyncio.run(scenario())
    assert connections == 5
    pings = used.bytes_out / 2  # PINGREQ is 2 bytes and nothing else was sent
    assert used.bytes_in == used.bytes_out  # each answered by a 2-byte PINGRESP
    assert 5 * (IDLE_S - 1) <= pings <= 5 * (IDLE_S + 1)
    segments = used.segments_out + used.segments_in
    assert 2 * pings <= segments <= 3 * pings
    per_ping = used.total / pings
    header = used.header_out / used.segments_out  # 52 B: IPv4 + TCP + timestamps
    assert 4 + 2 * header <= per_ping <= 4 + 3 * header


@pytest.mark.server
def test_a_sleeping_device_pays_the_handshake_with_every_reading(tmp_path):
    """Connect (TCP + TLS + CONNECT), one reading, DISCONNECT: more than the set-up alone plus the reading."""

    async def scenario():
        deployment = await start_transport(MqttTransport(qos=1, tls=True), tmp_path / "server")
        try:
            ports = {e.port for e in deployment.endpoints.values()}
            conns = _Connections(ports)
            sender = await deployment.transport.open_sender(0)
            await asyncio.sleep(0.3)
            setup = tcp_counters(conns.collect()).total
            await sender.close()
            conns.release()
            return setup, await _sleeping(deployment.transport, ports, 3, 10)
        finally:
            await deployment.stop()

    setup, per_reading = asyncio.run(scenario())
    assert setup > 1500  # a TLS 1.3 handshake alone is ~1.5 KB (README)
    assert per_reading > setup + len(READING)
