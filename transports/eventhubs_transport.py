"""Transport ``eventhubs``: the azure-eventhub SDK's async producer and consumer (AMQP).

Each sender is one ``EventHubProducerClient`` -- one AMQP connection, so
``connections = devices`` is the reference design's one-sender-per-device. Concurrent
sends on a sender are grouped into ``EventDataBatch``es (a group commit: whatever queued
while the previous batch was in flight goes in the next), by route:

- ``partitioning = "id"`` (default): the client hashes the device to a partition id, so
  a device stays on one partition (its order kept) and batches form per partition;
  the SDK opens one connection per partition it sends to;
- ``"key"``: partition key = the device id (the service hashes it; a batch carries one
  key, so at ~1 event per device per minute every event is its own send: measured here
  that keeps up with ~500 events/s on 16 connections against ~1,700 for ``"id"``);
- ``"none"``: no routing, the service spreads batches round-robin (no per-device order).

The receiver is one ``EventHubConsumerClient`` reading every partition
(``eventhubs_consumer``); with ``checkpoint = "blob"`` it checkpoints in a blob store
(Azurite locally) only once the cold store has the events. Without ``IOTBENCH_EVENTHUB_CONNECTION_STRING`` the transport starts the
project's local endpoint; with it, the same code talks to Azure (the string is never
logged or recorded). Every SDK call is bounded by ``call_timeout_s``: the SDK can wait
forever on a peer it does not understand.

A batch holds at most ``max_batch_events`` (100): the service meters a throughput unit
per second (1,000 events), and a batch larger than what is left of that second is
refused whole, so large batches under throttling are refused again and again.

Throttling: the SDK is run with ``retry_total=0`` and the transport retries, so that
each ServerBusy answer and each retry is counted (``counters()``), with the SDK's own
back-off for ServerBusy (4 s, ``azure.eventhub._constants.CUSTOM_CONDITION_BACKOFF``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib
from pathlib import Path
from typing import Any, ClassVar, Mapping

from iotbench.transports.base import Deliver, TransportDefaults, TransportError
from iotbench.transports.eventhubs_consumer import HubReceiver
from iotbench.transports.eventhubs_sas import ConnectionString, SasError, describe_failure, redact

__all__ = ["EventHubsTransport", "CONNECTION_STRING_ENV", "cloud_connection", "kafka_options"]

CONNECTION_STRING_ENV = "IOTBENCH_EVENTHUB_CONNECTION_STRING"
BUSY_BACKOFF_S = 4.0  # what the SDK itself waits after com.microsoft:server-busy
ROUNDS = 4  # batches a sender has in flight at once (each round: one batch per route)
GIVE_UP_S = 1.0  # no retry starts later than this before a send's call_timeout_s runs out
PARTITIONINGS = ("key", "id", "none")
CHECKPOINTS = ("none", "blob")

log = logging.getLogger("iotbench.eventhubs")


def cloud_connection(hub: str) -> ConnectionString | None:
    """The real namespace from the environment, or None to use the local endpoint."""
    text = os.environ.get(CONNECTION_STRING_ENV, "").strip()
    if not text:
        return None
    try:
        connection = ConnectionString.parse(text)
    except SasError as exc:
        raise TransportError(f"{CONNECTION_STRING_ENV}: {exc}") from None
    return connection if connection.entity else connection.with_entity(hub)


def kafka_options(hub: str = "telemetry") -> dict[str, Any]:
    """``kafka`` transport options for the namespace's Kafka endpoint, from the same connection string.

    Event Hubs speaks Kafka on port 9093, SASL PLAIN over TLS, with the user name
    ``$ConnectionString`` and the connection string as the password. The options name
    the environment variable, never its value: the secret stays out of specs and results.
    """
    connection = cloud_connection(hub)
    if connection is None:
        raise TransportError(f"set {CONNECTION_STRING_ENV} to the namespace's connection string to use its Kafka endpoint")
    return {"bootstrap": f"{connection.host.split(':')[0]}:9093", "security_protocol": "SASL_SSL",
            "sasl_mechanism": "PLAIN", "sasl_username": "$ConnectionString", "sasl_password_env": CONNECTION_STRING_ENV,
            "topic": connection.entity or hub, "create_topic": False}


class _Oversize(TransportError):
    """One payload larger than a publication may be: it fails alone, the rest of the group goes on."""


def _throttled(exc: BaseException) -> bool:
    text = str(exc)
    return "server-busy" in text or "ServerBusy" in text


def _refused(exc: BaseException) -> bool:
    return "resource-limit-exceeded" in str(exc) or "connection refused: the namespace allows" in str(exc)


class _Sender:
    """One producer client; ``send`` joins the next batch and returns once it is acknowledged."""

    def __init__(self, transport: "EventHubsTransport", index: int) -> None:
        from azure.eventhub.aio import EventHubProducerClient

        self._t = transport
        self._producer = EventHubProducerClient.from_connection_string(
            transport.connection.render(), retry_total=0)
        self._queue: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._refused: str | None = None
        self._partition_ids: list[str] | None = None
        self._rounds: set[asyncio.Task[None]] = set()
        self._since: dict[asyncio.Future[None], float] = {}  # when each waiting send was called
        loop = asyncio.get_running_loop()
        # connect now: a refused connection shows before the first event is due, and the SDK's
        # ~0.5 s connection set-up is not paid by the first readings of the measured schedule
        self._connected = loop.create_task(self._connect(), name=f"eventhubs-connect-{index}")
        self._task = loop.create_task(self._run(), name=f"eventhubs-sender-{index}")

    async def connected(self) -> None:
        await asyncio.wait([self._connected])  # never raises: a failure is kept for the first send

    async def _connect(self) -> None:
        try:
            if self._t.partitioning == "id":
                self._partition_ids = await self._call("get_partition_ids", self._producer.get_partition_ids())
            else:
                await self._call("connect", self._producer.create_batch())
        except Exception as exc:  # noqa: BLE001 - a refusal is remembered; anything else shows on the first send
            failure = exc if isinstance(exc, TransportError) else self._failure(exc)
            self._t.count("connect_failures")
            if not self._refused:
                self._t.note(str(failure))

    async def send(self, key: str, payload: bytes) -> None:
        if self._refused:
            raise TransportError(self._refused)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((key, payload, future))
        self._since[future] = time.monotonic()
        self._wake.set()
        try:
            await future
        finally:
            del self._since[future]

    async def _run(self) -> None:
        await asyncio.wait([self._connected])
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._refused:
                for _, _, future in self._queue:
                    if not future.done():
                        future.set_exception(TransportError(self._refused))
                self._queue = []
                continue
            items, self._queue = [e for e in self._queue if not e[2].done()], []
            groups: dict[tuple[str | None, str | None], list[tuple[bytes, asyncio.Future[None]]]] = {}
            try:
                for key, payload, future in items:
                    groups.setdefault(await self._route(key), []).append((payload, future))
            except Exception as exc:  # noqa: BLE001 - routing needs the partition ids: a failed call fails the lot
                error = exc if isinstance(exc, TransportError) else self._failure(exc)
                for _, _, future in items:
                    if not future.done():
                        future.set_exception(error)
                continue
            # a round runs on its own, so that a round waiting out a ServerBusy back-off does not
            # stop the next events from being batched and sent; at most ROUNDS at a time
            round_ = asyncio.get_running_loop().create_task(self._send_round(groups))
            self._rounds.add(round_)
            round_.add_done_callback(self._rounds.discard)
            if len(self._rounds) >= ROUNDS:
                await asyncio.wait(set(self._rounds), return_when=asyncio.FIRST_COMPLETED)

    async def _send_round(self, groups: dict[tuple[str | None, str | None], list[Any]]) -> None:
        if self._t.partitioning == "key":  # one SDK producer behind a lock: concurrency buys nothing
            for (partition_id, partition_key), group in groups.items():
                await self._send_group(partition_id, partition_key, group)
        else:  # one SDK producer (and connection) per partition: send to them side by side
            await asyncio.gather(*(self._send_group(pid, key, group) for (pid, key), group in groups.items()))

    async def _route(self, key: str) -> tuple[str | None, str | None]:
        mode = self._t.partitioning
        if mode == "key":
            return None, key
        if mode == "id":
            if self._partition_ids is None:
                self._partition_ids = await self._call("get_partition_ids", self._producer.get_partition_ids())
            return self._partition_ids[zlib.crc32(key.encode()) % len(self._partition_ids)], None
        return None, None

    async def _call(self, what: str, awaitable: Any) -> Any:
        try:
            async with asyncio.timeout(self._t.call_timeout_s):
                return await awaitable
        except TimeoutError:
            raise TransportError(f"eventhubs: {what} got no answer within {self._t.call_timeout_s:g} s "
                                 f"from {self._t.connection.host}") from None

    async def _send_group(self, partition_id: str | None, partition_key: str | None,
                          group: list[tuple[bytes, asyncio.Future[None]]]) -> None:
        """Send ``group`` as few batches as fit; each payload's future gets the outcome of its batch."""
        route = {"partition_id": partition_id, "partition_key": partition_key}
        start = 0
        while start < len(group):
            taken: list[tuple[bytes, asyncio.Future[None]]] = []
            try:
                batch, taken = await self._fill(route, group[start:start + self._t.max_batch_events])
                await self._send_with_retries(route, batch, taken)
                outcome: TransportError | None = None
            except _Oversize as exc:
                outcome, taken = exc, group[start:start + 1]
            except TransportError as exc:
                outcome = exc
            except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a counted, explained send failure
                outcome = self._failure(exc)
            done = group[start:start + len(taken)] if taken else group[start:]  # no batch: the rest shares the fate
            for _, future in done:
                if not future.done():
                    future.set_exception(outcome) if outcome else future.set_result(None)
            start += len(done)

    async def _fill(self, route: dict[str, Any], items: list[tuple[bytes, asyncio.Future[None]]]) -> tuple[Any, list]:
        """A batch of the first ``items`` that fit the link's maximum message size, and those items."""
        from azure.eventhub import EventData

        batch = await self._call("create_batch", self._producer.create_batch(**route))
        for n, (payload, _) in enumerate(items):
            try:
                batch.add(EventData(payload))
            except ValueError:  # full
                if n == 0:
                    raise _Oversize(f"eventhubs: a payload of {len(payload)} bytes exceeds the "
                                    f"{batch.max_size_in_bytes}-byte publication limit") from None
                return batch, items[:n]
        return batch, items

    def _failure(self, exc: BaseException) -> TransportError:
        if _refused(exc):
            if not self._refused:
                self._t.count("connections_refused")
            self._refused = f"eventhubs: connection refused by the namespace ({describe_failure(exc)})"
            return TransportError(self._refused)
        return TransportError(f"eventhubs: send failed: {describe_failure(exc)}")

    async def _send_with_retries(self, route: dict[str, Any], batch: Any,
                                 items: list[tuple[bytes, asyncio.Future[None]]]) -> None:
        """Send; on ServerBusy wait the SDK's back-off and retry, within ``call_timeout_s`` overall.

        A retry rebuilds the batch from the payloads whose send has not timed out at the
        publisher meanwhile: an event it already counted as failed must not arrive later.
        """
        t = self._t
        for attempt in range(t.retries + 1):
            live = [item for item in items if not item[1].done()]
            if not live:
                return
            # the publisher gives up on a send call_timeout_s after calling it (when send_timeout_s is the
            # same): no attempt starts later than GIVE_UP_S before that, so a send it counted failed
            # cannot arrive after all
            now = time.monotonic()
            deadline = min(self._since.get(future, now) for _, future in live) + t.call_timeout_s - GIVE_UP_S
            if now >= deadline:
                t.count("events_given_up", len(live))
                raise TransportError(f"eventhubs: not sent within {t.call_timeout_s:g} s (call_timeout_s): "
                                     f"{'throttled, ' if attempt else ''}queued behind earlier sends") from None
            if attempt:
                batch, live = await self._fill(route, live)
            try:
                await self._call("send_batch", self._producer.send_batch(batch, timeout=t.call_timeout_s))
                return
            except TransportError:
                raise
            except Exception as exc:  # noqa: BLE001
                if not _throttled(exc):
                    raise
                t.count("sends_throttled")
                t.count("events_throttled", len(live))
                if attempt == t.retries or time.monotonic() + t.busy_backoff_s >= deadline:
                    t.count("events_given_up", len(live))
                    raise TransportError(f"eventhubs: ServerBusy (throttled) {attempt + 1} time(s); gave up after "
                                         f"{attempt} retries within {t.call_timeout_s:g} s") from None
                t.count("retries")
                await asyncio.sleep(t.busy_backoff_s)

    async def close(self) -> None:
        self._task.cancel()
        self._connected.cancel()
        for round_ in self._rounds:
            round_.cancel()
        for _, _, future in self._queue:
            if not future.done():
                future.set_exception(TransportError("eventhubs sender closed"))
        try:
            async with asyncio.timeout(self._t.call_timeout_s):
                await self._producer.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


class EventHubsTransport(TransportDefaults):
    """``EventHubsTransport(partitioning="key", throughput_units=1)``; see the module doc."""

    name: ClassVar[str] = "eventhubs"
    OPTIONS: ClassVar[Mapping[str, Any]] = {
        "partitioning": "id", "partitions": 4, "max_batch_events": 100, "consumer_group": "$default",
        "throughput_units": 0, "max_message_bytes": 1024 * 1024, "max_connections": 0,
        "retries": 3, "busy_backoff_s": BUSY_BACKOFF_S, "call_timeout_s": 10.0, "hub": "telemetry",
        "checkpoint": "none",
    }
    CONTRACT_VARIANTS: ClassVar[list[dict[str, Any]]] = [{"partitioning": "key"}, {"partitioning": "id"}]

    def __init__(self, partitioning: str = "id", partitions: int = 4, max_batch_events: int = 100,
                 consumer_group: str = "$default", throughput_units: float = 0, max_message_bytes: int = 1024 * 1024,
                 max_connections: int = 0, retries: int = 3, busy_backoff_s: float = BUSY_BACKOFF_S,
                 call_timeout_s: float = 10.0, hub: str = "telemetry", checkpoint: str = "none") -> None:
        if checkpoint not in CHECKPOINTS:
            raise TransportError(f"eventhubs: checkpoint {checkpoint!r} is not one of {', '.join(CHECKPOINTS)}")
        if partitioning not in PARTITIONINGS:
            raise TransportError(f"eventhubs: partitioning {partitioning!r} is not one of {', '.join(PARTITIONINGS)}")
        self.partitioning, self.partitions, self.max_batch_events = partitioning, partitions, max_batch_events
        self.consumer_group, self.retries, self.busy_backoff_s = consumer_group, retries, busy_backoff_s
        self.call_timeout_s, self.hub, self.checkpoint = call_timeout_s, hub, checkpoint
        self._storage: Any = None
        self._checkpoint_store: Any = None
        self._limits = (throughput_units, max_message_bytes, max_connections)
        self._endpoint: Any = None
        self._connection: ConnectionString | None = None
        self._counters: dict[str, int] = {}
        self._notes: set[str] = set()

    # -- life cycle ----------------------------------------------------------------

    async def start(self, workdir: Path) -> None:
        self._counters = {}
        if self.checkpoint == "blob":
            await self._start_checkpoint_store(Path(workdir))
        self._connection = cloud_connection(self.hub)
        if self._connection is not None:
            return
        from iotbench.transports.eventhubs_server import EndpointSettings, LocalEventHubs

        tu, max_bytes, max_conns = self._limits
        settings = EndpointSettings(self.hub, self.partitions, tu, max_bytes, max_conns, rest=self.wants_rest())
        self._endpoint = LocalEventHubs(workdir, settings)
        await asyncio.to_thread(self._endpoint.start)
        self._connection = self._endpoint.connection

    def wants_rest(self) -> bool:
        return False

    @property
    def connection(self) -> ConnectionString:
        if self._connection is None:
            raise TransportError(f"{self.name} transport used before start()")
        return self._connection

    async def open_sender(self, index: int) -> _Sender:
        """A producer client, connected (or refused) before it is handed out: its connect is bounded."""
        sender = _Sender(self, index)
        await sender.connected()
        return sender

    async def open_receiver(self, deliver: Deliver) -> HubReceiver:
        return await HubReceiver(self, deliver).open()

    async def _start_checkpoint_store(self, workdir: Path) -> None:
        from iotbench.transports.eventhubs_checkpoints import LocalAzurite, checkpoint_store, storage_from_env

        storage = storage_from_env()
        if storage is None:
            self._storage = LocalAzurite(workdir / "azurite")
            await asyncio.to_thread(self._storage.start)
            storage = self._storage.connection_string
        # a container per cell: no ownership or checkpoint of an earlier cell is picked up
        container = f"iotbench-{self.consumer_group.strip('$').lower() or 'default'}-{int(time.time() * 1000)}"
        self._checkpoint_store = await checkpoint_store(storage, container, self.call_timeout_s)

    async def stop(self) -> None:
        if self._checkpoint_store is not None:
            try:
                async with asyncio.timeout(self.call_timeout_s):
                    await self._checkpoint_store.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
            self._checkpoint_store = None
        if self._storage is not None:
            await asyncio.to_thread(self._storage.stop)
            self._storage = None
        if self._endpoint is not None:
            await asyncio.to_thread(self._endpoint.stop)
            for name, value in self._endpoint.stats().items():
                if name in ("throttled", "refused_connections", "oversize"):
                    self._counters[f"server_{name}"] = value
            self._endpoint = None

    # -- hooks for the consumer side and the results -------------------------------

    def starting_position(self) -> Any:
        return "-1"  # a fresh local hub, or the whole retention of a cloud hub: nothing sent is skipped

    def payload(self, event: Any) -> bytes:
        """The payload a received ``EventData`` carries (the REST transport undoes base64 here)."""
        return b"".join(event.body)

    def checkpoint_kwargs(self) -> dict[str, Any]:
        return {"checkpoint_store": self._checkpoint_store} if self._checkpoint_store is not None else {}

    def note(self, message: str) -> None:
        """Log a condition once per transport (a refused connection), with secrets redacted."""
        if message not in self._notes:
            self._notes.add(message)
            log.warning("%s", redact(message))

    def count(self, name: str, n: int = 1) -> None:
        self._counters[name] = self._counters.get(name, 0) + n

    def counters(self) -> dict[str, int]:
        """What the transport saw that the runner cannot (throttled sends, retries, refusals)."""
        return dict(self._counters)
