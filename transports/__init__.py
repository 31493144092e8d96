"""Transport plugins. Adding one is adding a ``*_transport.py`` module and one line here."""

from __future__ import annotations

from typing import Any

from iotbench.registry import Plugin, Registry
from iotbench.transports.base import Deliver, Receiver, Sender, Transport, TransportError

__all__ = ["TRANSPORTS", "Deliver", "Receiver", "Sender", "Transport", "TransportError", "get_transport"]

TRANSPORTS = Registry(
    "transport",
    {
        # keep sorted
        "amqp": Plugin("iotbench.transports.amqp.transport:AmqpTransport", "pip install 'iotbench[amqp]'"),
        "coap": Plugin("iotbench.transports.coap:CoapTransport", "pip install 'iotbench[coap]'"),
        "eventhubs": Plugin(
            "iotbench.transports.eventhubs.transport:EventHubsTransport", "pip install 'iotbench[eventhubs]'"
        ),
        "eventhubs-https": Plugin(
            "iotbench.transports.eventhubs.https:EventHubsHttpsTransport", "pip install 'iotbench[eventhubs,http]'"
        ),
        "http": Plugin("iotbench.transports.http.transport:HttpTransport", "pip install 'iotbench[http]'"),
        "inprocess": Plugin("iotbench.transports.inprocess:InProcessTransport", "built in"),
        "kafka": Plugin("iotbench.transports.kafka:KafkaTransport", "pip install 'iotbench[kafka]'"),
        "mqtt": Plugin("iotbench.transports.mqtt:MqttTransport", "pip install 'iotbench[mqtt]'"),
    },
    group="iotbench.transports",
)


def get_transport(name: str) -> Any:
    """The transport class registered as ``name``: ``get_transport('inprocess')()``."""
    return TRANSPORTS.load(name)
