"""The sending side of the ``eventhubs`` transport: one ``EventHubProducerClient`` per sender.

Each ``send`` is one publication: one ``EventData`` (``send_event``), so a cell's batch 1 is
one reading per publication, as the spec says, and the hub's publication count equals the
runner's ``sends``. ``group_sends = true`` instead groups concurrent sends into
``EventDataBatch``es (a group commit: whatever queued while the previous batch was in
flight goes in the next), at most ``max_batch_events`` (100) each: the service meters a
throughput unit per second (1,000 events), and a batch larger than what is left of that
second is refused whole, so large batches under throttling are refused again and again.

A sender opens its links before it is handed out (a refused connection shows before the
first event is due, and no reading of the measured schedule pays for a connection).

Throttling: the SDK is run with ``retry_total=0`` and the sender retries, so that each
ServerBusy answer and each retry is counted (``counters()``), with the SDK's own back-off
for ServerBusy (4 s, ``azure.eventhub._constants.CUSTOM_CONDITION_BACKOFF``).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from typing import TYPE_CHECKING, Any

from iotbench.transports.base import TransportError
from iotbench.transports.sas import describe_failure

if TYPE_CHECKING:
    from iotbench.transports.eventhubs.transport import EventHubsTransport

__all__ = ["HubSender", "open_partition_links"]

ROUNDS = 4  # (group_sends) batches a sender has in flight at once (each round: one batch per route)
GIVE_UP_S = 1.0  # no retry starts later than this before a send's call_timeout_s runs out


class _Oversize(TransportError):
    """One payload larger than a publication may be: it fails alone, the rest of the group goes on."""


def _throttled(exc: BaseException) -> bool:
    text = str(exc)
    return "server-busy" in text or "ServerBusy" in text


def _refused(exc: BaseException) -> bool:
    return "resource-limit-exceeded" in str(exc) or "connection refused: the namespace allows" in str(exc)


def _too_large(exc: BaseException) -> bool:
    """The service refused a publication over its size limit (amqp:link:message-size-exceeded)."""
    return "message-size-exceeded" in str(exc) or "MessageSizeExceeded" in str(exc)


async def open_partition_links(producer: Any, partition_ids: list[str], timeout_s: float) -> None:
    """Open every partition's link of an SDK ``producer`` (one connection each) now, side by side.

    The SDK opens them at the first send to each partition, ~0.5 s apiece here (its
    handshake polls every 50 ms): left to the first readings, that set-up reached past a
    1 s warm-up into the measured window (measured: publish and end-to-end p99 ~1.5 s
    over a cell's first 2 s). A gateway that runs for months has its links open. There
    is no public call for it (5.15): an SDK without these internals opens them at the
    first send, as before.
    """
    start, producers = getattr(producer, "_start_producer", None), getattr(producer, "_producers", None)
    if start is None or producers is None:
        return
    for pid in partition_ids:
        await start(pid, timeout_s)
    opening = [getattr(producers.get(pid), "_open_with_retry", None) for pid in partition_ids]
    await asyncio.gather(*(open_() for open_ in opening if open_ is not None))


class HubSender:
    """One producer client; ``send`` publishes one event (or joins the next batch: ``group_sends``)
    and returns once it is acknowledged."""

    def __init__(self, transport: EventHubsTransport, index: int) -> None:
        from azure.eventhub.aio import EventHubProducerClient

        self._t = transport
        self._producer = EventHubProducerClient.from_connection_string(
            transport.connection.render(), retry_total=0, **transport.sdk_kwargs()
        )
        self._queue: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._refused: str | None = None
        self._partition_ids: list[str] | None = None
        self._max_bytes = 0  # the link's publication limit, learnt when connecting (0: unknown)
        self._rounds: set[asyncio.Task[None]] = set()  # group rounds, or single sends, in flight
        self._since: dict[asyncio.Future[None], float] = {}  # when each waiting send was called
        loop = asyncio.get_running_loop()
        # connect now: a refused connection shows before the first event is due, and the SDK's
        # ~0.5 s set-up per connection is not paid by the first readings of the measured schedule
        self._connected = loop.create_task(self._connect(), name=f"eventhubs-connect-{index}")
        self._task = loop.create_task(self._run(), name=f"eventhubs-sender-{index}")

    async def connected(self) -> None:
        await asyncio.wait([self._connected])  # never raises: a failure is kept for the first send

    async def _connect(self) -> None:
        try:
            # create_batch opens the hub's link (what "key" and "none" send on) and tells its size limit
            batch = await self._call("connect", self._producer.create_batch())
            self._max_bytes = batch.max_size_in_bytes
            if self._t.partitioning == "id":
                self._partition_ids = await self._call("get_partition_ids", self._producer.get_partition_ids())
                await self._call(
                    "open partition links",
                    open_partition_links(self._producer, self._partition_ids, self._t.call_timeout_s),
                )
        except Exception as exc:  # noqa: BLE001 - a refusal is remembered; anything else shows on the first send
            failure = exc if isinstance(exc, TransportError) else self._failure(exc)
            self._t.count("connect_failures")
            if not self._refused:
                self._t.note(str(failure))

    async def send(self, key: str, payload: bytes) -> None:
        if self._refused:
            raise TransportError(self._refused)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._since[future] = time.monotonic()
        if self._t.group_sends:
            self._queue.append((key, payload, future))
            self._wake.set()
        else:  # a task of its own: a publisher's timeout cancels the wait, never an SDK call half-way
            single = loop.create_task(self._send_single(key, payload, future))
            self._rounds.add(single)
            single.add_done_callback(self._rounds.discard)
        try:
            await future
        finally:
            del self._since[future]

    async def _send_single(self, key: str, payload: bytes, future: asyncio.Future[None]) -> None:
        """One event, one publication. Sends queue on the SDK's lock of their partition's link in the
        order they were called (asyncio's locks are fair): a device's readings keep their order."""
        try:
            partition_id, partition_key = await self._route(key)
        except Exception as exc:  # noqa: BLE001 - routing needs the partition ids: a failed call fails the send
            if not future.done():
                future.set_exception(exc if isinstance(exc, TransportError) else self._failure(exc))
            return
        await self._send_group(partition_id, partition_key, [(payload, future)])

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
            # (group_sends) a round runs on its own, so that a round waiting out a ServerBusy back-off does not
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
            raise TransportError(
                f"eventhubs: {what} got no answer within {self._t.call_timeout_s:g} s from {self._t.connection.host}"
            ) from None

    async def _send_group(
        self, partition_id: str | None, partition_key: str | None, group: list[tuple[bytes, asyncio.Future[None]]]
    ) -> None:
        """Send ``group`` as few publications as fit; each payload's future gets the outcome of its own."""
        route = {"partition_id": partition_id, "partition_key": partition_key}
        most = self._t.max_batch_events if self._t.group_sends else 1
        start = 0
        while start < len(group):
            taken: list[tuple[bytes, asyncio.Future[None]]] = []
            try:
                batch, taken = await self._fill(route, group[start : start + most])
                await self._send_with_retries(route, batch, taken)
                outcome: TransportError | None = None
            except _Oversize as exc:
                outcome, taken = exc, group[start : start + 1]
            except TransportError as exc:
                outcome = exc
            except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a counted, explained send failure
                outcome = self._failure(exc)
            done = group[start : start + len(taken)] if taken else group[start:]  # no batch: the rest shares the fate
            for _, future in done:
                if not future.done():
                    future.set_exception(outcome) if outcome else future.set_result(None)
            start += len(done)

    async def _fill(self, route: dict[str, Any], items: list[tuple[bytes, asyncio.Future[None]]]) -> tuple[Any, list]:
        """What one publication carries -- one ``EventData`` (the first item), or with ``group_sends`` a
        batch of the first ``items`` that fit the link's maximum message size -- and those items."""
        from azure.eventhub import EventData

        if not self._t.group_sends:
            payload = items[0][0]
            if self._max_bytes and len(payload) > self._max_bytes:  # sure to be refused: spare the round trip
                raise self._oversize(len(payload))
            return EventData(payload), items[:1]
        batch = await self._call("create_batch", self._producer.create_batch(**route))
        for n, (payload, _) in enumerate(items):
            try:
                batch.add(EventData(payload))
            except ValueError:  # full
                if n == 0:
                    raise self._oversize(len(payload)) from None
                return batch, items[:n]
        return batch, items

    def _oversize(self, size: int) -> _Oversize:
        limit = f"{self._max_bytes}-byte" if self._max_bytes else "service's"
        return _Oversize(f"eventhubs: a payload of {size} bytes exceeds the {limit} publication limit")

    async def _publish(self, route: dict[str, Any], publication: Any) -> None:
        timeout = self._t.call_timeout_s
        if self._t.group_sends:
            await self._call("send_batch", self._producer.send_batch(publication, timeout=timeout))
        else:
            await self._call("send_event", self._producer.send_event(publication, timeout=timeout, **route))

    def _failure(self, exc: BaseException) -> TransportError:
        if _refused(exc):
            if not self._refused:
                self._t.count("connections_refused")
            self._refused = f"eventhubs: connection refused by the namespace ({describe_failure(exc)})"
            return TransportError(self._refused)
        return TransportError(f"eventhubs: send failed: {describe_failure(exc)}")

    async def _send_with_retries(
        self, route: dict[str, Any], batch: Any, items: list[tuple[bytes, asyncio.Future[None]]]
    ) -> None:
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
                raise TransportError(
                    f"eventhubs: not sent within {t.call_timeout_s:g} s (call_timeout_s): "
                    f"{'throttled, ' if attempt else ''}queued behind earlier sends"
                ) from None
            if attempt:
                batch, live = await self._fill(route, live)
            try:
                await self._publish(route, batch)
                return
            except TransportError:
                raise
            except Exception as exc:  # noqa: BLE001
                if _too_large(exc) and len(live) == 1:  # one event whose encoding tipped it over the limit
                    raise self._oversize(len(live[0][0])) from None
                if not _throttled(exc):
                    raise
                t.count("sends_throttled")
                t.count("events_throttled", len(live))
                if attempt == t.retries or time.monotonic() + t.busy_backoff_s >= deadline:
                    t.count("events_given_up", len(live))
                    raise TransportError(
                        f"eventhubs: ServerBusy (throttled) {attempt + 1} time(s); gave up after "
                        f"{attempt} retries within {t.call_timeout_s:g} s"
                    ) from None
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
