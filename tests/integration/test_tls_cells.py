"""TLS on every transport that runs over TLS in production: one short cell each, end to end.

MQTT (mosquitto), AMQP (RabbitMQ) and HTTPS (the ingest gateway) take TLS themselves; Kafka
goes through stunnel in front of Tansu; the local Event Hubs endpoint serves AMQPS and HTTPS,
and its cells use TLS by default (Azure is TLS-only). Each cell must store every event it
sent, and its servers must have made a local CA (the clients trusted nothing else).
"""

from __future__ import annotations

import asyncio

import pytest
from support import need_server

from iotbench.model.spec import parse_spec
from iotbench.pipeline.runner import run_cell
from iotbench.registry import PluginUnavailable
from iotbench.transports import get_transport
from iotbench.transports.base import TransportError

pytestmark = pytest.mark.server  # every test here starts a server

CELLS = [
    ("mqtt", {"tls": True}),
    ("amqp", {"tls": True}),
    ("http", {"tls": True}),
    ("kafka", {"tls": True}),
    ("eventhubs", {}),  # TLS by default
    ("eventhubs-https", {}),
]


def _spec(transport: str, options: dict) -> object:
    return parse_spec(
        {
            "codecs": ["json"],
            "transports": [transport],
            "batch": [1],
            "connections": [2],
            "devices": [100],
            "interval_s": [1.0],
            "duration_s": 2.0,
            "warmup_s": 0.5,
            "drain_timeout_s": 10.0,
            "transport_options": {transport: options} if options else {},
        }
    )


@pytest.mark.parametrize(("transport", "options"), CELLS, ids=[name for name, _ in CELLS])
def test_a_tls_cell_stores_every_event_it_sent(transport, options, tmp_path):
    try:
        get_transport(transport)
    except PluginUnavailable as exc:
        need_server(str(exc))
    spec = _spec(transport, options)
    cell = spec.cells()[0]
    result = asyncio.run(run_cell(spec, cell, tmp_path / "cell"))
    if result.status != "ok" and "not installed" in (result.error or ""):
        need_server(result.error)
    assert result.status == "ok", result.error
    assert result.events_sent > 0 and result.events_stored == result.events_sent, result
    assert result.events_lost == result.events_failed == 0
    assert list((tmp_path / "cell" / "server").rglob("ca.pem")), "no local CA: the cell ran without TLS"


def test_tls_shows_in_the_cell_id_where_it_is_not_the_default():
    assert "[tls=True]" in _spec("kafka", {"tls": True}).cells()[0].id
    assert "[tls=False]" in _spec("eventhubs", {"tls": False}).cells()[0].id


def test_kafka_tls_and_a_clear_text_protocol_contradict_each_other():
    with pytest.raises(TransportError, match='use "SSL" or "SASL_SSL"'):
        get_transport("kafka")(tls=True, security_protocol="PLAINTEXT")


def test_kafka_sasl_on_the_embedded_broker_is_refused_with_the_fix(monkeypatch):
    monkeypatch.delenv("IOTBENCH_KAFKA_BOOTSTRAP", raising=False)
    with pytest.raises(TransportError, match="needs an external broker.*set bootstrap"):
        get_transport("kafka")(security_protocol="SASL_SSL")


def test_eventhubs_without_tls_is_refused_against_azure(monkeypatch):
    monkeypatch.setenv(
        "IOTBENCH_EVENTHUB_CONNECTION_STRING",
        "Endpoint=sb://fabrikam.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0",
    )
    for name in ("eventhubs", "eventhubs-https"):
        with pytest.raises(TransportError, match="TLS only") as caught:
            get_transport(name)(tls=False).servers()
        assert "c2VjcmV0" not in str(caught.value)


def test_the_eventhubs_sdk_refuses_an_endpoint_whose_certificate_it_does_not_trust(tmp_path):
    from support import start_transport

    from iotbench.transports.servers.tls import local_ca

    try:
        transport = get_transport("eventhubs")(call_timeout_s=5.0)
    except PluginUnavailable as exc:
        need_server(str(exc))

    async def scenario() -> None:
        deployment = await start_transport(transport, tmp_path / "server")
        try:
            transport._sdk_kwargs["connection_verify"] = str(local_ca(tmp_path / "another").ca)
            with pytest.raises(TransportError, match="TLS handshake .* failed .*CERTIFICATE_VERIFY_FAILED"):
                await transport.open_receiver(lambda payload: None)
        finally:
            await deployment.stop()

    asyncio.run(scenario())
