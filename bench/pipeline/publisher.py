"""The sending side of a cell: readings -> (batch) -> encode -> compress -> send.

The publisher groups readings per connection (a gateway's batch: up to ``batch``
readings or ``linger_s`` after the first), sends each payload, and measures around
the transport's ``send``: send delay (how late the send started against its intended
time -- coordinated omission shows here, not hidden) and publish latency (send ->
acknowledgement). It never waits for an acknowledgement before the next send is due;
only ``max_inflight`` unfinished sends bound it, and every send is bounded by
``send_timeout_s``.

A send costs the harness no asyncio task unless it has to wait: each connection's
payloads go through one send loop that runs ``sender.send`` up to its first suspension
itself (``_start``). A send that completes there (an in-process queue with room, an MQTT
QoS 0 publish, a socket write) is done; one that waits (for an acknowledgement, for room
in a buffer) is seen through by the task that started it, and the connection's following
sends get a task each -- until one of them completes without waiting again.
"""

from __future__ import annotations

import asyncio
import time
import types
from collections import deque
from collections.abc import Coroutine, Generator, Sequence
from typing import Any

from iotbench.compression import Compression
from iotbench.model.telemetry import Reading
from iotbench.pipeline.accounting import SeqLedger
from iotbench.pipeline.consumer import Window
from iotbench.pipeline.deadletter import DeadLetter
from iotbench.pipeline.metrics import Latency, SizeStats
from iotbench.pipeline.series import SendSeries
from iotbench.pipeline.snapshots import SendSide
from iotbench.transports.base import Sender

__all__ = ["Publisher"]

# (connection, key, payload, readings, intended send time)
_Payload = tuple[int, str, bytes, list[Reading], float]
# a send suspended at its first wait: (the send's coroutine, what it waits on, when it started)
_Waiting = tuple[Coroutine[Any, Any, Any], Any, float]


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
        self._keys = [f"gateway-{k}" for k in range(n)]
        self._queued: list[deque[_Payload]] = [deque() for _ in range(n)]  # waiting for the connection's send loop
        self._looping = [False] * n  # the connection's send loop is running
        self._waits = [False] * n  # the connection's last send had to wait: its next ones get a task each
        self._tasks: set[asyncio.Task[None]] = set()  # strong references: the loop keeps weak ones only
        self._deadlines = _Deadlines()
        self._unfinished = 0  # payloads handed over and not yet acknowledged or failed
        self._capacity: asyncio.Future[None] | None = None  # wait_for_capacity's, while it waits
        self._idle: asyncio.Future[None] | None = None  # finish's, while it waits
        self.failed = SeqLedger()  # events of sends that raised or timed out (may still arrive)
        self.send_delay = Latency()
        self.publish = Latency()
        self.publish_failed = Latency()  # send -> failure: a timeout shows as send_timeout_s here, not nowhere
        self.sizes = SizeStats()
        self.series = SendSeries(window)  # per second, warm-up included
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

    def offer_many(self, times: list[float], positions: list[int], readings: list[Reading]) -> None:
        """``offer`` for each reading (what the fleet hands over in one step), in order."""
        offer = self.offer
        for intended, position, reading in zip(times, positions, readings):
            offer(intended, position, reading)

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
        if self.batch == 1:
            payload = self._compress(self._encode_one(readings[0]))
            key = readings[0].device_id
        else:
            payload = self._compress(self._encode_many(readings))
            key = self._keys[k]
        self.sizes.add_send(len(payload), n)
        self.events_sent += n
        self.sends += 1
        self._unfinished += 1
        item = (k, key, payload, readings, intended)
        if self._waits[k]:
            self._spawn(self._send_alone(item))
        else:
            self._queued[k].append(item)
            if not self._looping[k]:
                self._looping[k] = True
                self._spawn(self._send_loop(k))

    # -- sending -------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.add(asyncio.get_running_loop().create_task(coro))

    async def _send_loop(self, k: int) -> None:
        """The connection's queued payloads, in order, in this one task while their sends complete at once.

        A task and a timer per send cost ~8 us of CPU here (create_task, asyncio.timeout, a done
        callback), more than the whole harness may spend per event at 100,000 events/s on one core;
        a send run to completion in this loop costs ~0.2 us.
        """
        queue = self._queued[k]
        while queue:
            item = queue.popleft()
            waiting = self._start(item)
            if waiting is not None:
                # it waits: the payloads behind it get a task each (they start at the next loop turn,
                # as they would have anyway), and this task sees this one send through
                self._waits[k] = True
                while queue:
                    self._spawn(self._send_alone(queue.popleft()))
                self._looping[k] = False
                await self._finish(item, waiting)
                break
        else:
            self._looping[k] = False
        self._tasks.discard(asyncio.current_task())

    async def _send_alone(self, item: _Payload) -> None:
        """One payload in a task of its own (its connection's sends have been waiting)."""
        waiting = self._start(item)
        if waiting is None:
            self._waits[item[0]] = False  # it completed at once: the connection's loop takes over again
        else:
            await self._finish(item, waiting)
        self._tasks.discard(asyncio.current_task())

    def _start(self, item: _Payload) -> _Waiting | None:
        """Run the send up to its first wait; None when it completed (or failed) without one."""
        k, key, payload, readings, intended = item
        started = time.time()
        coro = self.senders[k].send(key, payload)
        try:
            waits_on = coro.send(None)  # what `await` does first: no timeout can fire before this returns
        except StopIteration:
            self._done(readings, intended, started, None)
            return None
        except Exception as exc:  # noqa: BLE001 - any failure of a send is counted and kept
            self._done(readings, intended, started, exc)
            return None
        return coro, waits_on, started

    async def _finish(self, item: _Payload, waiting: _Waiting) -> None:
        """Await the rest of a send that waits, bounded by ``send_timeout_s`` from its start."""
        coro, waits_on, started = waiting
        watched = self._deadlines.watch(self.send_timeout_s - (time.time() - started))
        try:
            await _resumed(coro, waits_on)
        except asyncio.CancelledError:
            if not self._deadlines.release(watched):
                raise  # not ours: the side is shutting down
            self._done(item[3], item[4], started, TimeoutError())
        except Exception as exc:  # noqa: BLE001 - any failure of a send is counted and kept
            self._deadlines.release(watched)
            self._done(item[3], item[4], started, exc)
        else:
            self._deadlines.release(watched)
            self._done(item[3], item[4], started, None)

    def _done(self, readings: list[Reading], intended: float, started: float, exc: Exception | None) -> None:
        ended = time.time()
        measured = intended >= self.window.start
        if measured:
            self.send_delay.record(started - intended)
        if exc is None:
            if measured:
                self.publish.record(ended - started)
            self.series.send(intended, started, ended, len(readings))
            self.events_acked += len(readings)
            self.sends_acked += 1
        else:
            reason = f"send failed: {type(exc).__name__}: {exc}" if str(exc) else f"send failed: {type(exc).__name__}"
            if isinstance(exc, TimeoutError):
                reason = f"send not acknowledged within {self.send_timeout_s:g} s"
            if measured:
                self.publish_failed.record(ended - started)
            self.series.failed(intended, started, ended, len(readings))
            self.events_failed += len(readings)
            self.sends_failed += 1
            self.failed.add_readings(readings)
            self.dead_letter.events([(r.device_id, r.seq) for r in readings], reason)
        self._unfinished -= 1
        if self._capacity is not None and self._unfinished < self.max_inflight and not self._capacity.done():
            self._capacity.set_result(None)
        if self._idle is not None and not self._unfinished and not self._idle.done():
            self._idle.set_result(None)

    def snapshot(self, scheduled: int, sent: SeqLedger) -> SendSide:
        """The sending side's figures: ``scheduled`` readings the fleet generated, ``sent`` their
        (device, seq) -- the fleet's own ledger: every reading offered is sent (``finish`` flushes the
        rest), and a ledger entry per reading here cost ~0.5 us a reading (measured, issue 10)."""
        if self.events_sent != scheduled:
            raise RuntimeError(f"the publisher sent {self.events_sent} of {scheduled} readings offered: call finish()")
        return SendSide(
            scheduled=scheduled,
            events_sent=self.events_sent,
            events_acked=self.events_acked,
            events_failed=self.events_failed,
            sends=self.sends,
            latency={"send_delay": self.send_delay, "publish": self.publish, "publish_failed": self.publish_failed},
            payload_bytes=self.sizes.per_event(),
            send_bytes=self.sizes.per_send(),
            sent=sent,
            failed=self.failed,
            series=self.series.to_wire(),
        )

    async def wait_for_capacity(self) -> None:
        """Block while ``max_inflight`` sends are unacknowledged (the send delay shows it)."""
        # One future resolved by the send that makes room: waiting on the in-flight sends
        # themselves costs O(in flight) per completion, and a short backlog then turns into
        # a collapse (measured: 52 of 68 s of a 10 s HTTP cell spent waiting).
        while self._unfinished >= self.max_inflight:
            self._capacity = asyncio.get_running_loop().create_future()
            try:
                await self._capacity
            finally:
                self._capacity = None

    async def finish(self) -> None:
        """Flush every open batch and wait for every send (each is bounded by its timeout)."""
        for k, pending in enumerate(self._pending):
            if pending:
                self._flush(k, min(self._deadline[k], time.time()))
        while self._unfinished:
            self._idle = asyncio.get_running_loop().create_future()
            try:
                await self._idle
            finally:
                self._idle = None


class _Watched:
    """A waiting send under ``_Deadlines``: its deadline, its task (None once over), whether it was cancelled."""

    __slots__ = ("deadline", "task", "cancelled")

    def __init__(self, deadline: float, task: asyncio.Task[Any] | None) -> None:
        self.deadline, self.task, self.cancelled = deadline, task, False


class _Deadlines:
    """Sends that wait, each cancelled when its time is up: ``watched = deadlines.watch(10.0)``, then
    ``deadlines.release(watched)`` once the send is over -- True when it was cancelled for its time.

    Every send has the same bound and they start in order, so their deadlines come in order: one FIFO
    and one timer for its head do what an ``asyncio.timeout`` per send did, which cost ~7 us of the
    ~24 us a waiting send cost the harness (measured).
    """

    def __init__(self) -> None:
        self._queue: deque[_Watched] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, timeout_s: float) -> _Watched:
        loop = asyncio.get_running_loop()
        watched = _Watched(loop.time() + timeout_s, asyncio.current_task())
        self._queue.append(watched)
        if self._timer is None:
            self._timer = loop.call_at(watched.deadline, self._expire)
        return watched

    def release(self, watched: _Watched) -> bool:
        task, watched.task = watched.task, None
        queue = self._queue
        while queue and queue[0].task is None:
            queue.popleft()
        if watched.cancelled and task is not None:
            task.uncancel()  # as asyncio.timeout does: the task's own count of cancellations stays right
        return watched.cancelled

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        queue, now = self._queue, loop.time()
        while queue and (queue[0].task is None or queue[0].deadline <= now):
            watched = queue.popleft()
            if watched.task is not None:
                watched.cancelled = True
                watched.task.cancel()
        self._timer = loop.call_at(queue[0].deadline, self._expire) if queue else None


@types.coroutine
def _resumed(coro: Coroutine[Any, Any, Any], waits_on: Any) -> Generator[Any, Any, Any]:
    """Await ``coro``, which has already run up to its first suspension on ``waits_on``.

    What ``await coro`` would do from there (PEP 380's ``yield from``): hand ``waits_on`` to the
    task, pass what the task sends or throws (a cancellation, a timeout) into ``coro``.
    """
    while True:
        try:
            sent = yield waits_on
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - thrown in by the task: the send's to handle
            try:
                waits_on = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                waits_on = coro.send(sent)
            except StopIteration as stop:
                return stop.value
