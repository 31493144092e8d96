"""AMQP 1.0 through python-qpid-proton, to RabbitMQ 3.10 with its AMQP 1.0 plugin.

Proton runs as a protocol engine on the asyncio loop (``amqp_engine.py``): no
reactor thread, ``deliver`` in the loop's thread.

Every sender is one AMQP connection with one link to the queue's address. Unsettled
(the default): ``send`` returns when RabbitMQ accepted the message (its disposition).
Pre-settled (``settled=True``): ``send`` returns once the transfer went to the
connection with credit -- fire and forget, as the protocol allows (the socket's write
buffer still pushes back). The receiver is one connection consuming the queue with
``credit`` messages of prefetch; it accepts each message once it was delivered.

A ``url`` option (see ``endpoints.py``) uses an external broker instead of starting
RabbitMQ; errors name the host and port, never the credentials.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from iotbench.transports.amqp.engine import AmqpConnection, ReceiverConnection, SenderConnection
from iotbench.transports.base import Deliver, TransportDefaults, TransportError
from iotbench.transports.endpoints import Endpoint, external_endpoint
from iotbench.transports.options import CONNECT_TIMEOUT_S, TransportOptions, option
from iotbench.transports.servers.base import Server
from iotbench.transports.servers.rabbitmq import RabbitMQServer
from iotbench.transports.tls import client_context

__all__ = ["AmqpOptions", "AmqpTransport"]

SCHEMES = {"amqp": 5672, "amqps": 5671}  # url schemes and their default ports


@dataclass(frozen=True)
class AmqpOptions(TransportOptions):
    transport: ClassVar[str] = "amqp"

    settled: bool = option(
        False,
        "true: pre-settled (at most once), send returns once handed to the link; "
        "false: send returns on the broker's accept",
    )
    address: str = option(
        "/queue/iotbench", "the link's address (RabbitMQ: /queue/NAME declares the queue)", nonempty=True
    )
    # messages the broker may push before it is asked again, held in memory
    credit: int = option(1000, "the receiver's prefetch", low=1, high=1_000_000, unit="messages")
    tls: bool = option(False, "AMQP over TLS (RabbitMQ with a local CA's certificate; amqps:// for a url)")
    url: str = option(
        "",
        "amqp://[user@]host:port of an external broker instead of starting RabbitMQ (password: IOTBENCH_AMQP_PASSWORD)",
    )
    connect_timeout_s: float = option(
        10.0,
        "bound on each connect and the broker's open/attach",
        low=CONNECT_TIMEOUT_S[0],
        high=CONNECT_TIMEOUT_S[1],
        unit="s",
    )

    def check(self) -> None:
        if self.url:
            external_endpoint(self.url, "amqp", SCHEMES)  # its shape, and no password in it (specs are saved)


class AmqpTransport(TransportDefaults):
    """``AmqpTransport(settled=False)``: unsettled sends, acknowledged on RabbitMQ's accept."""

    name: ClassVar[str] = "amqp"
    label: ClassVar[str] = "AMQP 1.0 through python-qpid-proton, to RabbitMQ's AMQP 1.0 plugin or an external broker"
    Options: ClassVar[type[AmqpOptions]] = AmqpOptions
    libraries: ClassVar[tuple[str, ...]] = ("python-qpid-proton",)
    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]] = [{"settled": False}, {"settled": True, "tls": True}]

    def __init__(self, **options: Any) -> None:
        o = self.options = AmqpOptions(**options)
        self.settled, self.tls, self.address, self.credit = o.settled, o.tls, o.address, o.credit
        self.connect_timeout_s, url = float(o.connect_timeout_s), o.url
        self.ssl_context: ssl.SSLContext | None = None
        self.endpoint: Endpoint | None = None
        self._url = url
        self._connections: list[AmqpConnection] = []

    def servers(self) -> dict[str, Server]:
        """RabbitMQ with its AMQP 1.0 plugin, unless the spec or ``IOTBENCH_AMQP_URL`` names a broker."""
        if external_endpoint(self._url, "amqp", SCHEMES) is not None:
            return {}
        return {"broker": RabbitMQServer(tls=self.tls)}

    async def start(self, endpoints: Mapping[str, Endpoint]) -> None:
        self.endpoint = endpoints.get("broker") or external_endpoint(self._url, "amqp", SCHEMES)
        if self.endpoint is None:
            raise TransportError("amqp: no broker was started and none is named (url option or IOTBENCH_AMQP_URL)")
        if self.endpoint.ca_file:
            self.ssl_context = client_context(self.endpoint.ca_file)  # a started broker's local CA
        elif self.tls or self.endpoint.scheme == "amqps":
            self.ssl_context = ssl.create_default_context()  # an external broker: the system's CAs

    async def _open(self, connection: AmqpConnection) -> None:
        where, timeout = connection.where, self.connect_timeout_s
        assert self.endpoint is not None
        self._connections.append(connection)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    lambda: connection, self.endpoint.host, self.endpoint.port, ssl=self.ssl_context
                )
        except TimeoutError:
            raise TransportError(f"cannot connect to {where} within {timeout:g} s") from None
        except ssl.SSLError as exc:
            raise TransportError(f"TLS with {where} failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise TransportError(f"cannot connect to {where}: {os.strerror(exc.errno) if exc.errno else exc}") from None
        try:
            async with asyncio.timeout(timeout):
                await connection.opened
        except TimeoutError:
            connection.abort("no AMQP open/attach")
            raise TransportError(
                f"no AMQP open/attach from {where} within {timeout:g} s (is it an AMQP 1.0 broker?)"
            ) from None

    def _running(self) -> Endpoint:
        if self.endpoint is None:
            raise TransportError("amqp transport used before start()")
        return self.endpoint

    async def open_sender(self, index: int) -> SenderConnection:
        connection = SenderConnection(self._running(), f"sender-{index}", self.address, self.settled)
        await self._open(connection)
        return connection

    async def open_receiver(self, deliver: Deliver) -> ReceiverConnection:
        connection = ReceiverConnection(self._running(), self.address, self.credit, deliver)
        await self._open(connection)
        return connection

    async def stop(self) -> None:
        for connection in self._connections:
            await connection.close()
        self._connections.clear()
