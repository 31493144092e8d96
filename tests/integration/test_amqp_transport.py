"""AMQP 1.0 transport specifics: failures that fail a cell (not the matrix), connections."""

from __future__ import annotations

import asyncio

import pytest
from support import arrived, start_transport
from transport_faults import check_endpoint_from_environment, established_to, run_with

from iotbench.transports import TransportError
from iotbench.transports.amqp.transport import AmqpTransport


def test_password_in_the_spec_is_refused_with_the_fix(tmp_path):
    from iotbench.model.spec import SpecError

    with pytest.raises(SpecError) as refused:  # when the spec is loaded: before run.json or a cell folder holds it
        run_with("amqp", {"url": "amqp://bob:s3cret@127.0.0.1:1"}, tmp_path)
    assert "IOTBENCH_AMQP_PASSWORD" in str(refused.value) and "s3cret" not in str(refused.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.server
def test_each_sender_is_its_own_connection(tmp_path):
    async def scenario() -> int:
        transport = AmqpTransport()
        deployment = await start_transport(transport, tmp_path / "server")
        try:
            received: list[bytes] = []
            receiver = await transport.open_receiver(received.append)
            senders = [await transport.open_sender(i) for i in range(3)]
            connections = established_to(transport.endpoint.port)
            for i, sender in enumerate(senders):
                await sender.send(f"dev-{i}", b"%d" % i)
            await arrived(received, 3)
            assert sorted(received) == [b"0", b"1", b"2"]
            for closable in (*senders, receiver):
                await closable.close()
            return connections
        finally:
            await deployment.stop()

    assert asyncio.run(asyncio.wait_for(scenario(), 90)) == 3 + 1


@pytest.mark.server
def test_tls_listener_speaks_tls_with_the_local_ca_only(tmp_path):
    async def scenario() -> tuple[str, str]:
        transport = AmqpTransport(tls=True, connect_timeout_s=3.0)
        deployment = await start_transport(transport, tmp_path / "server")
        try:
            port = transport.endpoint.port
            assert transport.endpoint.scheme == "amqps"
            await transport.open_sender(0)  # trusts the local CA: connects
            errors = []
            for url in (f"amqp://127.0.0.1:{port}", f"amqps://127.0.0.1:{port}"):  # plain TCP; system CAs
                other = AmqpTransport(url=url, connect_timeout_s=3.0)
                await other.start({})
                with pytest.raises(TransportError) as caught:
                    await other.open_sender(0)
                errors.append(str(caught.value))
                await other.stop()
            return errors[0], errors[1]
        finally:
            await deployment.stop()

    plain, untrusted = asyncio.run(asyncio.wait_for(scenario(), 90))
    assert "127.0.0.1:" in plain and "protocol error" in plain  # a TLS alert where AMQP was expected
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted


def test_environment_names_the_broker_when_the_spec_does_not(tmp_path, monkeypatch):
    check_endpoint_from_environment("amqp", "rabbitmq.conf", tmp_path, monkeypatch)
