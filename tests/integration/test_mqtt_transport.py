"""MQTT transport specifics: failures that fail a cell (not the matrix), topics, connections."""

from __future__ import annotations

import asyncio
import json

import pytest
from support import arrived, start_transport
from transport_faults import check_endpoint_from_environment, dead_port, established_to, run_with

from iotbench.transports import TransportError
from iotbench.transports.mqtt import MqttTransport


async def _started(transport: MqttTransport, tmp_path):
    """The deployment (``.transport``, ``.stop()``) of ``transport`` with its broker."""
    return await start_transport(transport, tmp_path / "server")


def test_password_stays_out_of_specs_errors_and_results(tmp_path, monkeypatch):
    from iotbench.model.spec import SpecError

    with pytest.raises(SpecError) as refused:  # when the spec is loaded: before run.json or a cell folder holds it
        run_with("mqtt", {"url": "mqtt://bob:s3cret@127.0.0.1:1"}, tmp_path / "in-spec")
    assert "IOTBENCH_MQTT_PASSWORD" in str(refused.value) and "s3cret" not in str(refused.value)
    assert not (tmp_path / "in-spec").exists()
    monkeypatch.setenv("IOTBENCH_MQTT_PASSWORD", "s3cret")
    port = dead_port()
    results = run_with("mqtt", {"url": f"mqtt://bob@127.0.0.1:{port}"}, tmp_path / "from-env")
    assert results[0].status == "failed" and f"127.0.0.1:{port}" in results[0].error
    saved = "".join(
        p.read_text()
        for p in (tmp_path / "from-env").rglob("*")
        if p.is_file() and p.suffix in {".jsonl", ".json", ".log"}
    )
    assert "s3cret" not in saved and "s3cret" not in json.dumps(results[0].error)


@pytest.mark.server
def test_each_sender_is_its_own_connection_and_devices_have_their_own_topic(tmp_path):
    async def scenario() -> tuple[int, list[str]]:
        deployment = await _started(MqttTransport(qos=1), tmp_path)
        transport = deployment.transport
        try:
            seen: list[str] = []
            # a second consumer on one device's topic sees that device only
            watcher = MqttTransport(qos=1, url=f"mqtt://127.0.0.1:{transport.endpoint.port}")
            await watcher.start({})
            conn = await watcher._connect("watcher")
            conn.client.on_message = lambda _c, _u, m: seen.append(m.topic)
            rc, mid = conn.client.subscribe("devices/dev-7/telemetry", qos=1)
            await conn.expect(mid)
            receiver = await transport.open_receiver(lambda payload: None)
            senders = [await transport.open_sender(i) for i in range(3)]
            connections = established_to(transport.endpoint.port)
            for key in ("dev-7", "dev-8", "gateway-0", "dev-7"):
                await senders[0].send(key, b"x")
            await asyncio.sleep(0.3)
            for closable in (*senders, receiver):
                await closable.close()
            await watcher.stop()
            return connections, seen
        finally:
            await deployment.stop()

    connections, seen = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert connections == 3 + 1 + 1  # three senders, the receiver, the watcher
    assert seen == ["devices/dev-7/telemetry", "devices/dev-7/telemetry"]


@pytest.mark.server
def test_tls_listener_speaks_tls_with_the_local_ca_only(tmp_path):
    async def scenario() -> tuple[str, str]:
        deployment = await _started(MqttTransport(qos=1, tls=True, connect_timeout_s=3.0), tmp_path)
        transport = deployment.transport
        try:
            port = transport.endpoint.port
            await transport.open_sender(0)  # trusts the local CA: connects
            errors = []
            for url in (f"mqtt://127.0.0.1:{port}", f"mqtts://127.0.0.1:{port}"):  # plain TCP; system CAs
                other = MqttTransport(url=url, connect_timeout_s=3.0)
                await other.start({})
                with pytest.raises(TransportError) as caught:
                    await other.open_sender(0)
                errors.append(str(caught.value))
                await other.stop()
            return errors[0], errors[1]
        finally:
            await deployment.stop()

    plain, untrusted = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert "CONNACK" in plain or "lost" in plain
    assert "certificate verify failed" in untrusted


def test_environment_names_the_broker_when_the_spec_does_not(tmp_path, monkeypatch):
    check_endpoint_from_environment("mqtt", "mosquitto.conf", tmp_path, monkeypatch)


@pytest.mark.server
def test_websockets_listener_speaks_websockets(tmp_path):
    async def scenario() -> str:
        deployment = await _started(MqttTransport(broker="amqtt", websockets=True, connect_timeout_s=3.0), tmp_path)
        transport = deployment.transport
        try:
            received: list[bytes] = []
            await transport.open_receiver(received.append)
            sender = await transport.open_sender(0)
            await sender.send("dev-1", b"over websockets")
            await arrived(received, 1)
            assert received == [b"over websockets"]
            plain = MqttTransport(url=f"mqtt://127.0.0.1:{transport.endpoint.port}", connect_timeout_s=2.0)
            await plain.start({})
            with pytest.raises(TransportError) as caught:  # MQTT without the WebSocket upgrade is refused
                await plain.open_sender(0)
            await plain.stop()
            return str(caught.value)
        finally:
            await deployment.stop()

    error = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert "no CONNACK from 127.0.0.1" in error


def test_websockets_on_mosquitto_is_refused_with_the_fix(tmp_path):
    results = run_with("mqtt", {"websockets": True}, tmp_path)
    assert results[0].status == "failed" and 'use broker="amqtt"' in results[0].error
