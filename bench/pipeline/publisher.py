"""The sending side of a cell: readings -> (batch) -> encode -> compress -> send.

The publisher groups readings per connection (a gateway's batch: up to ``batch``
readings or ``linger_s`` after the first), hands each payload to a send task, and
measures around the transport's ``send``: send delay (how late the send started
against its intended time -- coordinated omission shows here, not hidden) and
publish latency (send -> acknowledgement). It never waits for an acknowledgement
before the next send is due; only ``max_inflight`` unacknowledged sends bound it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from iotbench.compression import Compression
from iotbench.model.telemetry import Reading
from iotbench.pipeline.accounting import SeqLedger
from iotbench.pipeline.consumer import Window
from iotbench.pipeline.deadletter import DeadLetter
from iotbench.pipeline.metrics import Latency, SizeStats
from iotbench.pipeline.snapshots import SendSide
from iotbench.transports.base import Sender

__all__ = ["Publisher"]


class Publisher:
    """``publisher.offer(intended, device_index, reading)`` for each due reading."""

    def __init__(
        self,
        senders: Sequence[Sender],
        codec: Any,
        compression: Compression,
        *,
        batch: int,
        linger_s: float,
        max_inflight: int,
        send_timeout_s: float,
        window: Window,
        dead_letter: DeadLetter,
    ) -> None:
        self.senders = list(senders)
        self.batch = batch
        self.linger_s = linger_s
        self.max_inflight = max_inflight
        self.send_timeout_s = send_timeout_s
        self.window = window
        self.dead_letter = dead_letter
        self._encode_one = codec.encode
        self._encode_many = codec.encode_batch
        self._compress = compression.compress
        n = len(self.senders)
        self._pending: list[list[Reading]] = [[] for _ in range(n)]
        self._deadline = [float("inf")] * n  # when each connection's open batch must go
        self._inflight: set[asyncio.Task[None]] = set()
        self._capacity = asyncio.Event()
        self.sent = SeqLedger()
        self.failed = SeqLedger()  # events of sends that raised or timed out (may still arrive)
        self.send_delay = Latency()
        self.publish = Latency()
        self.publish_failed = Latency()  # send -> failure: a timeout shows as send_timeout_s here, not nowhere
        self.sizes = SizeStats()
        self.events_sent = self.events_acked = self.events_failed = 0
        self.sends = self.sends_acked = self.sends_failed = 0

    # -- batching ------------------------------------------------------------------

    def offer(self, intended: float, device_index: int, reading: Reading) -> None:
        k = device_index % len(self.senders)
        pending = self._pending[k]
        pending.append(reading)
        if len(pending) >= self.batch:
            self._flush(k, intended)
        elif len(pending) == 1:
            self._deadline[k] = intended + self.linger_s

    def flush_due(self, now: float) -> None:
        """Send every open batch whose linger time has passed."""
        for k, deadline in enumerate(self._deadline):
            if deadline <= now:
                self._flush(k, deadline)

    def next_deadline(self) -> float:
        return min(self._deadline)

    def _flush(self, k: int, intended: float) -> None:
        readings = self._pending[k]
        self._pending[k] = []
        self._deadline[k] = float("inf")
        n = len(readings)
        raw = self._encode_one(readings[0]) if self.batch == 1 else self._encode_many(readings)
        payload = self._compress(raw)
        self.sizes.add_send(len(payload), n)
        self.sent.add_readings(readings)
        self.events_sent += n
        self.sends += 1
        key = readings[0].device_id if self.batch == 1 else f"gateway-{k}"
        task = asyncio.get_running_loop().create_task(self._send(self.senders[k], key, payload, readings, intended))
        self._inflight.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if len(self._inflight) < self.max_inflight:
            self._capacity.set()

    # -- sending -------------------------------------------------------------------

    async def _send(self, sender: Sender, key: str, payload: bytes, readings: list[Reading], intended: float) -> None:
        started = time.time()
        measured = intended >= self.window.start
        if measured:
            self.send_delay.record(started - intended)
        try:
            async with asyncio.timeout(self.send_timeout_s):
                await sender.send(key, payload)
        except Exception as exc:  # noqa: BLE001 - any failure of a send is counted and kept
            reason = f"send failed: {type(exc).__name__}: {exc}" if str(exc) else f"send failed: {type(exc).__name__}"
            if isinstance(exc, TimeoutError):
                reason = f"send not acknowledged within {self.send_timeout_s:g} s"
            if measured:
                self.publish_failed.record(time.time() - started)
            self.events_failed += len(readings)
            self.sends_failed += 1
            self.failed.add_readings(readings)
            self.dead_letter.events([(r.device_id, r.seq) for r in readings], reason)
            return
        if measured:
            self.publish.record(time.time() - started)
        self.events_acked += len(readings)
        self.sends_acked += 1

    def snapshot(self, scheduled: int) -> SendSide:
        """The sending side's figures (``scheduled``: readings the fleet generated)."""
        return SendSide(
            scheduled=scheduled,
            events_sent=self.events_sent,
            events_acked=self.events_acked,
            events_failed=self.events_failed,
            sends=self.sends,
            latency={"send_delay": self.send_delay, "publish": self.publish, "publish_failed": self.publish_failed},
            payload_bytes=self.sizes.per_event(),
            send_bytes=self.sizes.per_send(),
            sent=self.sent,
            failed=self.failed,
        )

    async def wait_for_capacity(self) -> None:
        """Block while ``max_inflight`` sends are unacknowledged (the send delay shows it)."""
        # One Event set by the done callbacks: waiting on the set of in-flight tasks
        # instead costs O(in flight) per completion, and a short backlog then turns
        # into a collapse (measured: 52 of 68 s of a 10 s HTTP cell spent waiting).
        while len(self._inflight) >= self.max_inflight:
            self._capacity.clear()
            await self._capacity.wait()

    async def finish(self) -> None:
        """Flush every open batch and wait for every send (each is bounded by its timeout)."""
        for k, pending in enumerate(self._pending):
            if pending:
                self._flush(k, min(self._deadline[k], time.time()))
        if self._inflight:
            await asyncio.wait(set(self._inflight))
