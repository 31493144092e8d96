"""Transport ``eventhubs-https``: the Event Hubs REST send API in, the SDK's consumer out.

Devices POST with SAS tokens, the way the service documents it: one event per request
(``form = "single"``) or the servicebus JSON batch form (``"batch"``, where a binary
payload travels base64-encoded in ``Body``: +33 %), to the hub URL or the per-device
publisher URL (``url``; the publisher id is then the partition key, which keeps each
device's order). The HTTP client is the ``http`` transport's sender (aiohttp,
keep-alive or a new connection per request): one client implementation, two servers.

The local endpoint serves the REST API next to AMQP, into the same partitions
(``eventhubs_rest``), and the receiver is the ``eventhubs`` transport's consumer
client, so a cell measures HTTPS in and AMQP out, as in Azure. With
``IOTBENCH_EVENTHUB_CONNECTION_STRING`` set, requests go to
``https://<namespace>/<hub>/...`` instead.

``counters()`` adds ``wire_body_bytes`` (request bodies as sent, after the batch form)
next to the runner's payload bytes: their ratio is the REST form's growth.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar, Mapping

from iotbench.model.cost import MAX_PUBLICATION_BYTES
from iotbench.transports.base import TransportError
from iotbench.transports.eventhubs.transport import AUTO, EventHubsTransport

__all__ = ["EventHubsHttpsTransport"]

MODES = ("keep-alive", "new-connection")  # the local REST front is HTTP/1.1 (uvicorn)
FORMS = ("single", "batch")
URLS = ("publisher", "hub")


class EventHubsHttpsTransport(EventHubsTransport):
    """``EventHubsHttpsTransport(form="batch", url="publisher")``; see the module doc."""

    name: ClassVar[str] = "eventhubs-https"
    OPTIONS: ClassVar[Mapping[str, Any]] = {
        "mode": "keep-alive", "form": "single", "url": "publisher", "partitions": 4, "consumer_group": "$default",
        "throughput_units": AUTO, "max_message_bytes": MAX_PUBLICATION_BYTES, "call_timeout_s": 10.0,
        "hub": "telemetry", "checkpoint": "none",
    }
    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]] = [{}, {"form": "batch"}]  # publisher URLs keep device order

    def __init__(self, mode: str = "keep-alive", form: str = "single", url: str = "publisher", partitions: int = 4,
                 consumer_group: str = "$default", throughput_units: float | str = AUTO,
                 max_message_bytes: int = MAX_PUBLICATION_BYTES,
                 call_timeout_s: float = 10.0, hub: str = "telemetry", checkpoint: str = "none") -> None:
        for option, value, allowed in (("mode", mode, MODES), ("form", form, FORMS), ("url", url, URLS)):
            if value not in allowed:
                raise TransportError(f"eventhubs-https option {option}={value!r} is not known; "
                                     f"use one of {', '.join(allowed)}")
        super().__init__(partitions=partitions, consumer_group=consumer_group, throughput_units=throughput_units,
                         max_message_bytes=max_message_bytes, call_timeout_s=call_timeout_s, hub=hub,
                         checkpoint=checkpoint)
        self.mode, self.form, self.url = mode, form, url
        self._senders: list[Any] = []

    def wants_rest(self) -> bool:
        return True

    def _rest_base(self) -> str:
        if self._endpoint is not None:
            return str(self._endpoint.rest_endpoint)
        return f"https://{self.connection.host}"  # the namespace's REST API (cloud)

    async def open_sender(self, index: int) -> Any:
        from iotbench.transports.http.rest_client import RestEndpoint, RestSender

        connection = self.connection
        endpoint = RestEndpoint(self._rest_base(), None, self.hub, connection.key_name, connection.key)
        sender = RestSender(endpoint, self.mode, self.form, self.url, self.call_timeout_s)
        self._senders.append(sender)
        return sender

    def payload(self, event: Any) -> bytes:
        from iotbench.transports.http.rest_client import BODY_ENCODING

        body = b"".join(event.body)
        props = event.properties
        if props and props.get(BODY_ENCODING.encode(), props.get(BODY_ENCODING)) in (b"base64", "base64"):
            return base64.b64decode(body)
        return body

    def counters(self) -> dict[str, int]:
        out = super().counters()
        out["wire_body_bytes"] = sum(s.wire_body_bytes for s in self._senders)
        return out
