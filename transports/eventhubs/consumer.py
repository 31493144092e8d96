"""The consuming side of the ``eventhubs`` transports: one ``EventHubConsumerClient``, every partition.

Greedy load balancing claims every partition at once; ``max_wait_time`` makes the
SDK call back on idle partitions too, which is how ``open`` knows each partition's
link is up (the SDK opens one AMQP connection per partition: under a connection limit
the consumer must hold its connections before the producers take theirs).

Only this cell's events count: each partition is read from just after its last
enqueued sequence number, read when the receiver opens -- events a previous cell (or run)
left in the hub are skipped, every event enqueued after the open is read.

It reads as a processor tuned for its throughput does: ``prefetch`` (the link credit)
covers ``PREFETCH_S`` of the planned rate per partition. The SDK (5.15, pyamqp) tops the
credit up only once it is all spent, and only after a 50 ms pause of its receive loop,
so with its default of 300 every 300 events per partition the endpoint had to stop and
wait (measured at 1,667 events/s over 4 partitions: end-to-end p99 77 ms with 300,
51 ms with 2,000). What remains is the SDK's own: its call-back loop looks at the
received events every 50 ms when it found none (p50 ~27 ms, p99 ~51 ms on loopback);
``max_wait_time`` only paces the idle call-backs and costs no latency.

Checkpoints follow the cold store, never delivery: the consumer calls ``mark()`` when
the cold store seals a file and ``durable(mark)`` once that file is durable, and only
then does each partition's checkpoint move to the last event delivered before the mark.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from typing import TYPE_CHECKING, Any

from iotbench.transports.base import Deliver, Load, ReceiverDefaults, TransportError, task_failure
from iotbench.transports.sas import ConnectionString, describe_failure
from iotbench.transports.tls import client_context

if TYPE_CHECKING:
    from iotbench.transports.eventhubs.transport import EventHubsTransport

__all__ = ["HubReceiver", "LIVENESS_S"]

LIVENESS_S = 0.5  # the consumer's idle call-back period: how it shows each partition is being read
PREFETCH_S = 30.0  # seconds of a partition's planned events its link credit covers: one top-up stall per 30 s
PREFETCH_MIN, PREFETCH_MAX = 300, 20_000  # the SDK's default; a bound on events held per partition


def prefetch(load: Load | None, partitions: int) -> int:
    """Link credit per partition for ``load`` (one received event per send: ``batch`` readings)."""
    if load is None:
        return PREFETCH_MIN
    per_partition = load.events_per_s / max(load.batch, 1) / max(partitions, 1)
    return max(PREFETCH_MIN, min(PREFETCH_MAX, math.ceil(per_partition * PREFETCH_S)))


async def _probe(connection: ConnectionString, ca_file: str | None) -> str:
    """Why an endpoint did not answer, in words: nothing listens, a TLS handshake fails (the SDK
    retries and keeps the reason to itself), or something that is not Event Hubs."""
    host, _, port = connection.host.partition(":")
    port_number = int(port) if port else (5672 if connection.emulator else 5671)
    try:
        async with asyncio.timeout(2.0):
            _, writer = await asyncio.open_connection(host, port_number)
        writer.close()
    except (OSError, TimeoutError) as exc:
        return f"nothing accepts connections on {host}:{port_number} ({type(exc).__name__}); check the endpoint"
    if not connection.emulator:  # TLS: does the handshake go through with the CA the SDK was given?
        try:
            context = client_context(ca_file) if ca_file else ssl.create_default_context()
            async with asyncio.timeout(2.0):
                _, writer = await asyncio.open_connection(host, port_number, ssl=context, server_hostname=host)
            writer.close()
        except ssl.SSLError as exc:
            return f"the TLS handshake with {host}:{port_number} failed ({exc.reason or exc}); check the CA it trusts"
        except (OSError, TimeoutError, TransportError):
            pass
    return f"{host}:{port_number} accepts connections but does not answer as Event Hubs; check the endpoint"


class HubReceiver(ReceiverDefaults):
    """One consumer client over every partition, from where each partition ends when it opens."""

    def __init__(self, transport: EventHubsTransport, deliver: Deliver) -> None:
        from azure.eventhub.aio import EventHubConsumerClient

        self._t = transport
        self._deliver = deliver
        self._client = EventHubConsumerClient.from_connection_string(
            transport.connection.render(),
            consumer_group=transport.consumer_group,
            retry_total=3,
            load_balancing_strategy="greedy",
            load_balancing_interval=10.0,
            **transport.checkpoint_kwargs(),
            **transport.sdk_kwargs(),
        )
        self._task: asyncio.Task[None] | None = None
        self._live: set[str] = set()  # partitions whose receive loop has called back at least once
        self._latest: dict[str, tuple[Any, Any]] = {}  # partition -> (context, last event delivered)
        self._checkpointing: set[asyncio.Task[None]] = set()
        self._closed = False
        self._failure: str | None = None
        self.errors: list[str] = []

    async def open(self) -> HubReceiver:
        try:  # an eager, bounded call: a wrong endpoint fails here, not silently in the background
            async with asyncio.timeout(self._t.call_timeout_s):
                partitions = await self._client.get_partition_ids()
        except TimeoutError:
            await self.close()
            why = await _probe(self._t.connection, self._t.sdk_kwargs().get("connection_verify"))
            raise TransportError(
                f"no answer from {self._t.connection.host} within "
                f"{self._t.call_timeout_s:g} s (get_partition_ids): {why}"
            ) from None
        except Exception as exc:  # noqa: BLE001
            await self.close()
            raise TransportError(
                f"cannot reach hub {self._t.connection.entity!r} at {self._t.connection.host}: {describe_failure(exc)}"
            ) from None
        positions = await self._ends(partitions)
        self._task = asyncio.get_running_loop().create_task(
            self._client.receive_batch(
                self._on_batch,
                on_error=self._on_error,
                starting_position=positions,
                starting_position_inclusive=False,
                max_batch_size=300,
                max_wait_time=LIVENESS_S,
                prefetch=prefetch(self._t.load, len(partitions)),
            ),
            name="eventhubs-receiver",
        )
        # the SDK opens one connection per partition: wait until all are receiving, so that senders
        # (and a connection limit) meet a consumer that is already there
        deadline = time.monotonic() + self._t.call_timeout_s
        while len(self._live) < len(partitions) and time.monotonic() < deadline and not self._task.done():
            await asyncio.sleep(0.05)
        if len(self._live) < len(partitions):
            why = "; ".join(dict.fromkeys(self.errors)) or "no error reported"
            await self.close()
            raise TransportError(
                f"the consumer could not receive from partitions "
                f"{sorted(set(partitions) - self._live)} within {self._t.call_timeout_s:g} s: {why}"
            )
        return self

    async def _ends(self, partitions: list[str]) -> dict[str, Any]:
        """Where each partition's reading starts: after its last enqueued sequence number, now.

        Sequence numbers rather than an enqueued time: exact, and free of skew between this
        machine's clock and the service's (an enqueued-time filter from a clock that runs
        ahead skips this cell's first events; one that runs behind reads a previous cell's).
        """

        async def end(pid: str) -> Any:
            props = await self._client.get_partition_properties(pid)
            return "-1" if props["is_empty"] else props["last_enqueued_sequence_number"]

        try:
            async with asyncio.timeout(self._t.call_timeout_s):
                ends = await asyncio.gather(*(end(pid) for pid in partitions))
        except Exception as exc:  # noqa: BLE001 - a timeout or refusal: the consumer cannot start
            await self.close()
            why = "no answer" if isinstance(exc, TimeoutError) else describe_failure(exc)
            raise TransportError(
                f"cannot read the partitions' last sequence numbers from "
                f"{self._t.connection.host} within {self._t.call_timeout_s:g} s: {why}"
            ) from None
        return dict(zip(partitions, ends))

    def failure(self) -> str | None:
        """Why delivery stopped: ``deliver`` raised, or the SDK's receive loop ended; None while healthy.

        The SDK's own ``on_error`` reports (a lost link it re-opens) are counted, not failures."""
        if self._task is None or self._closed:  # closing ends the receive loop: that is no failure
            return self._failure
        return task_failure(self._task, self._failure)

    async def _on_batch(self, context: Any, events: list[Any]) -> None:
        self._live.add(context.partition_id)
        if not events or self._failure:  # idle (max_wait_time passed: the link is open), or delivery broke
            return
        deliver, payload = self._deliver, self._t.payload
        try:
            for event in events:
                deliver(payload(event))
        except Exception as exc:  # noqa: BLE001 - the SDK would pass it to on_error and read on: the cell must fail
            self._failure = f"deliver raised {type(exc).__name__}: {exc}"
            return
        self._latest[context.partition_id] = (context, events[-1])

    def mark(self) -> dict[str, tuple[Any, Any]]:
        """Where each partition stands now: the runner calls it when the cold store seals a file."""
        return dict(self._latest)

    def durable(self, mark: dict[str, tuple[Any, Any]]) -> None:
        """Everything delivered up to ``mark`` is durable in the cold store: checkpoint it now, not before."""
        if self._closed or self._t.checkpoint == "none":
            return
        loop = asyncio.get_running_loop()
        for context, event in mark.values():
            task = loop.create_task(self._checkpoint(context, event))
            self._checkpointing.add(task)
            task.add_done_callback(self._checkpointing.discard)

    async def _checkpoint(self, context: Any, event: Any) -> None:
        try:
            async with asyncio.timeout(self._t.call_timeout_s):
                await context.update_checkpoint(event)
            self._t.count("checkpoints")
        except Exception as exc:  # noqa: BLE001 - a missed checkpoint means replay, not loss: count it
            self._t.count("checkpoint_failures")
            self._t.note(f"eventhubs: checkpoint failed: {describe_failure(exc)}")

    async def _on_error(self, context: Any, error: Exception) -> None:
        self.errors.append(describe_failure(error))
        self._t.count("receiver_errors")

    async def close(self) -> None:
        self._closed = True
        if self._checkpointing:  # let checkpoints in flight finish (each is bounded)
            await asyncio.wait(set(self._checkpointing))
        try:
            async with asyncio.timeout(self._t.call_timeout_s):
                await self._client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
        if self._task:
            self._task.cancel()
