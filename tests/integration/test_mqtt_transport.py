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
    async def scenario() -> tuple[int, list[bytes]]:
        deployment = await _started(MqttTransport(qos=1), tmp_path)
        transport = deployment.transport
        try:
            seen: list[bytes] = []
            # a second consumer on one device's topic sees that device only
            watcher = MqttTransport(qos=1, url=f"mqtt://127.0.0.1:{transport.endpoint.port}")
            await watcher.start({})
            conn = await watcher._connect("watcher", seen.append)
            await conn.subscribe("devices/dev-7/telemetry", 1)
            receiver = await transport.open_receiver(lambda payload: None)
            senders = [await transport.open_sender(i) for i in range(3)]
            connections = established_to(transport.endpoint.port)
            for key in ("dev-7", "dev-8", "gateway-0", "dev-7"):
                await senders[0].send(key, key.encode())
            await asyncio.sleep(0.3)
            for closable in (*senders, receiver):
                await closable.close()
            await watcher.stop()
            return connections, seen
        finally:
            await deployment.stop()

    connections, seen = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert connections == 3 + 1 + 1  # three senders, the receiver, the watcher
    assert seen == [b"dev-7", b"dev-7"]


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


# -- the client against a scripted broker: what it waits for, holds back and fails --------------


class _ScriptedBroker:
    """A loopback MQTT 'broker' that answers CONNECT with ``connack`` and records every packet
    after it; the test decides when (and whether) to acknowledge."""

    def __init__(self, connack: bytes) -> None:
        self.connack = connack
        self.packets: list[bytes] = []
        self.writer: asyncio.StreamWriter | None = None
        self.port = 0
        self.reading = asyncio.Event()  # cleared: the broker stops reading after CONNECT
        self.reading.set()

    async def __aenter__(self) -> _ScriptedBroker:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        if self.writer is not None:
            self.writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from iotbench.transports.mqtt_packets import split

        self.writer, buffer, connected = writer, b"", False
        while data := await reader.read(65536):
            await self.reading.wait()
            buffer += data
            end = 0
            for _first, start, end in split(buffer, 0):
                packet = buffer[start - 2 if end - start < 128 else start - 3 : end]
                if not connected:
                    connected = True
                    writer.write(self.connack)
                else:
                    self.packets.append(packet)
            buffer = buffer[end:]

    def publishes(self) -> list[tuple[int, bytes]]:
        """(packet id, payload) of each QoS 1 PUBLISH received (MQTT 5, no properties)."""
        out = []
        for p in self.packets:
            if p[0] >> 4 == 3:
                topic_end = 4 + int.from_bytes(p[2:4], "big")
                out.append((int.from_bytes(p[topic_end : topic_end + 2], "big"), p[topic_end + 3 :]))
        return out

    def puback(self, packet_id: int, reason: int = 0) -> None:
        assert self.writer is not None
        self.writer.write(b"\x40\x03" + packet_id.to_bytes(2, "big") + bytes((reason,)))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_qos1_send_returns_on_its_puback_and_the_receive_maximum_holds_the_rest_in_order(loop):
    async def scenario() -> None:
        # MQTT 5 CONNACK: success, properties: receive maximum 2
        async with _ScriptedBroker(b"\x20\x06\x00\x00\x03\x21\x00\x02") as broker:
            transport = MqttTransport(qos=1, protocol="5", url=f"mqtt://127.0.0.1:{broker.port}")
            await transport.start({})
            sender = await transport.open_sender(0)
            sends = [asyncio.ensure_future(sender.send("dev-1", bytes([n]))) for n in range(4)]
            await asyncio.sleep(0.2)
            assert [payload for _, payload in broker.publishes()] == [b"\x00", b"\x01"]  # two in flight
            assert not any(s.done() for s in sends)  # nothing returns before its PUBACK
            first_id = broker.publishes()[0][0]
            broker.puback(first_id)
            await asyncio.sleep(0.2)
            assert sends[0].done() and not sends[1].done()
            assert [payload for _, payload in broker.publishes()] == [b"\x00", b"\x01", b"\x02"]  # the next, in order
            broker.puback(broker.publishes()[1][0], reason=0x87)  # not authorized
            with pytest.raises(TransportError, match=r"refused the message: not authorized \(0x87\)"):
                await sends[1]
            await asyncio.sleep(0.2)
            assert [payload for _, payload in broker.publishes()][3:] == [b"\x03"]
            broker.writer.close()  # the broker goes away with two sends unacknowledged
            for pending in sends[2:]:
                with pytest.raises(TransportError, match=r"connection to 127\.0\.0\.1:\d+ lost"):
                    await pending
            with pytest.raises(TransportError, match="lost"):
                await sender.send("dev-1", b"after")
            await transport.stop()

    if loop == "uvloop":
        import uvloop  # a core dependency (pyproject): missing is a failure, not a skip

        uvloop.run(asyncio.wait_for(scenario(), 30))
    else:
        asyncio.run(asyncio.wait_for(scenario(), 30))


def test_qos0_send_waits_while_the_socket_is_full_instead_of_buffering_without_bound():
    async def scenario() -> int:
        async with _ScriptedBroker(b"\x20\x02\x00\x00") as broker:
            transport = MqttTransport(qos=0, url=f"mqtt://127.0.0.1:{broker.port}")
            await transport.start({})
            sender = await transport.open_sender(0)
            broker.reading.clear()
            payload = bytes(100_000)
            returned = 0
            while returned < 1000:  # 100 MB: far beyond what the kernel's socket buffers hold
                pending = asyncio.ensure_future(sender.send("dev-1", payload))
                done, _ = await asyncio.wait({pending}, timeout=0.5)
                if not done:
                    break
                returned += 1
            broker.reading.set()  # the broker reads again: the waiting send returns
            await asyncio.wait_for(pending, 10)
            await transport.stop()
            return returned

    returned = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert returned < 300, f"{returned} sends of 100 KB returned while nothing was read"


def test_packets_split_across_reads_and_long_lengths_are_read_whole():
    from iotbench.transports.mqtt_packets import publish, split

    big = publish(1, 7, b"devices/d/telemetry", bytes(range(256)) * 70, False)  # 3-byte remaining length
    stream = b"\x40\x02\x00\x01" + big + b"\xd0\x00"
    for cut in (1, 2, 4, 5, 6, 300, len(stream) - 1):
        head = list(split(stream[:cut], 0))
        done = head[-1][2] if head else 0
        tail = list(split(stream[done:], 0))
        whole = [(f, s + 0, e) for f, s, e in head] + [(f, s + done, e + done) for f, s, e in tail]
        assert [(f, stream[s:e]) for f, s, e in whole] == [
            (0x40, b"\x00\x01"),
            (0x32, big[4:]),
            (0xD0, b""),
        ], cut


@pytest.mark.server
def test_a_broker_that_dies_fails_waiting_sends_and_the_receiver(tmp_path):
    async def scenario() -> tuple[list[BaseException | None], str | None]:
        deployment = await _started(MqttTransport(qos=1), tmp_path)
        transport = deployment.transport
        try:
            receiver = await transport.open_receiver(lambda payload: None)
            sender = await transport.open_sender(0)
            await sender.send("dev-1", b"before")
            assert receiver.failure() is None
            [broker] = deployment.started
            await asyncio.to_thread(broker.stop)  # mosquitto ends with the connections open
            sends = [asyncio.ensure_future(sender.send("dev-1", b"x")) for _ in range(100)]  # before the loss is read
            outcomes = await asyncio.gather(*sends, return_exceptions=True)
            await asyncio.sleep(0.2)
            return [o if isinstance(o, BaseException) else None for o in outcomes], receiver.failure()
        finally:
            await deployment.stop()

    outcomes, failure = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert all(isinstance(o, TransportError) and "lost" in str(o) for o in outcomes), outcomes[:3]
    assert failure is not None and "lost" in failure
