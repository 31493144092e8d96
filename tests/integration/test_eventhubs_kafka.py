"""The Kafka transport aimed at Event Hubs' Kafka endpoint from the same connection string.

No namespace is reachable here, so this checks the wiring: the options ``kafka_options``
derives are all ones the ``kafka`` transport knows, and give its clients SASL PLAIN over
TLS on port 9093 with the connection string as password -- read from the environment,
never written into the options.
"""

from __future__ import annotations

import pytest
from support import need_modules

need_modules("aiokafka", extra="kafka")

from iotbench.transports.base import TransportError  # noqa: E402
from iotbench.transports.eventhubs.transport import CONNECTION_STRING_ENV, kafka_options  # noqa: E402
from iotbench.transports.kafka import KafkaTransport  # noqa: E402

pytestmark = pytest.mark.server  # every test here starts a server

KEY = "c2VjcmV0LWtleS1vZi10aGUtbmFtZXNwYWNl"
CONN = (
    f"Endpoint=sb://fabrikam.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey={KEY};EntityPath=devices"
)


def test_kafka_options_target_port_9093_with_sasl_plain_over_tls_and_keep_the_key_out(monkeypatch):
    monkeypatch.setenv(CONNECTION_STRING_ENV, CONN)
    options = kafka_options()
    assert options["bootstrap"] == "fabrikam.servicebus.windows.net:9093" and options["topic"] == "devices"
    assert KEY not in repr(options)
    transport = KafkaTransport(**options)  # every option is one the kafka transport knows
    settings = transport._connection(options["bootstrap"], None)
    assert settings["security_protocol"] == "SASL_SSL" and settings["sasl_mechanism"] == "PLAIN"
    assert settings["sasl_plain_username"] == "$ConnectionString" and settings["sasl_plain_password"] == CONN
    assert callable(settings["ssl_context"])  # TLS with the system's trust, as for the real namespace


def test_kafka_options_without_a_connection_string_say_what_to_set(monkeypatch):
    monkeypatch.delenv(CONNECTION_STRING_ENV, raising=False)
    with pytest.raises(TransportError, match=CONNECTION_STRING_ENV):
        kafka_options()
