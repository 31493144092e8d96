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
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from iotbench.transports.eventhubs.transport import EventHubsTransport, HubOptions
from iotbench.transports.options import option

__all__ = ["EventHubsHttpsOptions", "EventHubsHttpsTransport"]

MODES = ("keep-alive", "new-connection")  # the local REST front is HTTP/1.1 (uvicorn)
FORMS = ("single", "batch")
URLS = ("publisher", "hub")


@dataclass(frozen=True)
class EventHubsHttpsOptions(HubOptions):
    transport: ClassVar[str] = "eventhubs-https"

    mode: str = option(
        "keep-alive", "HTTP/1.1 on one persistent connection, or a new connection per request", choices=MODES
    )
    form: str = option(
        "single",
        "one event per request, or the servicebus JSON batch form (binary bodies base64-encoded: +33 %)",
        choices=FORMS,
    )
    url: str = option(
        "publisher", "the per-device publisher URL (keeps each device's order) or the hub URL", choices=URLS
    )


class EventHubsHttpsTransport(EventHubsTransport):
    """``EventHubsHttpsTransport(form="batch", url="publisher")``; see the module doc."""

    name: ClassVar[str] = "eventhubs-https"
    label: ClassVar[str] = "Event Hubs' REST send API (HTTPS, SAS tokens) in, the azure-eventhub SDK's consumer out"
    Options: ClassVar[type[HubOptions]] = EventHubsHttpsOptions
    libraries: ClassVar[tuple[str, ...]] = (*EventHubsTransport.libraries, "httptools", "uvicorn")
    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]] = [
        {},
        {"form": "batch", "tls": False},
    ]  # publisher URLs keep order

    def __init__(self, **options: Any) -> None:
        o = EventHubsHttpsOptions(**options)
        # the hub's options; those of the AMQP sender (partitioning, grouping, retries) keep their defaults
        super().__init__(**{k: v for k, v in asdict(o).items() if k in HubOptions.names()})
        self.options = o
        self.mode, self.form, self.url = o.mode, o.form, o.url
        self._senders: list[Any] = []

    def wants_rest(self) -> bool:
        return True

    def _rest_base(self) -> str:
        if self._rest is not None:
            return self._rest  # the local endpoint's REST send API
        return f"https://{self.connection.host}"  # the namespace's REST API (cloud)

    async def open_sender(self, index: int) -> Any:
        from iotbench.transports.http.rest_client import RestEndpoint, RestSender

        connection = self.connection
        endpoint = RestEndpoint(self._rest_base(), self._ca_file, self.hub, connection.key_name, connection.key)
        sender = RestSender(endpoint, self.mode, self.form, self.url, self.call_timeout_s)
        self._senders.append(sender)
        return await sender.connect()  # as a device does when it starts: set-up bytes before the first reading

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
