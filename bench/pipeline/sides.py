"""The two sides of a cell, each in its own OS process, as devices and backend are.

The sending side is the fleet, the publisher and the transport's senders; the receiving side
is the transport's receiver, the consumer (decode, validate) and the cold store. The runner
(``iotbench.pipeline.runner``) starts the cell's servers, then one receiving process and the
sending processes, and talks to them over pipes:

    side -> runner   ("ready", None)  ("progress", events)  ("failed", reason)  ("done", wire)
    runner -> side   ("go", Go)  ("drain", Drain)  ("stop", None)

Each side answers with its snapshot (``iotbench.pipeline.snapshots``) in wire form: counts,
ledgers and HdrHistograms, which the runner merges exactly. A side's own CPU, its event loop
and its garbage collector are its own: the sending side no longer pays for decoding and
storing, and the receiving side's latency is not the sender's backlog.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from iotbench.codecs import get_codec
from iotbench.compression import get_compression
from iotbench.model.spec import Cell, Spec
from iotbench.pipeline.accounting import unstored
from iotbench.pipeline.coldstore import JsonLinesColdStore
from iotbench.pipeline.consumer import Consumer, Window
from iotbench.pipeline.deadletter import DeadLetter
from iotbench.pipeline.fleet import Fleet, FleetConfig
from iotbench.pipeline.publisher import Publisher
from iotbench.pipeline.snapshots import ledger_from_wire
from iotbench.pipeline.sockets import held, tcp_counters
from iotbench.pipeline.usage import Reading, peak_rss_mb, read_now
from iotbench.transports.base import Load, Receiver, Transport, TransportError
from iotbench.transports.endpoints import Endpoint

__all__ = ["Drain", "Go", "SideTask", "receiving_side", "sending_side"]

START_TIMEOUT_S = 120.0  # a connect (the Event Hubs SDK takes seconds), bounded
CLOSE_TIMEOUT_S = 10.0
QUIET_S = 5.0  # stop draining once nothing has arrived for this long
LATE_S = 2.0  # after a drain that gave up: arrivals this long after it are counted late, not lost
EXACT_CHECK_S = 0.5  # the drain's exact (device, seq) check runs at most this often
DUE_CHUNK = 2000  # readings taken per step when behind, so sends are never starved
PROGRESS_S = 0.25
TICK_S = 0.05  # the receiving side's housekeeping: cold-store rolls, health, progress
TIMER_S = 0.001  # the event loops' timer resolution: the sending side wakes at most this often
CLOSE_SETTLE_S = 0.2  # after closing the senders: the peer's side of the goodbye arrives


@dataclass(frozen=True)
class SideTask:
    """Everything a side needs, picklable: the cell, where it writes, what to connect to."""

    spec: Spec
    cell: Cell
    folder: str
    transport: str  # "module:Class": a class registered at run time in the runner is found too
    endpoints: dict[str, Endpoint]
    load: Load
    run_id: str
    max_seq: int
    shard: int = 0  # which of the spec's sending_processes this is (the receiving side: 0)
    # the runner's environment when the cell started: a side's process comes from a fork server
    # started earlier, and endpoints and secrets (IOTBENCH_*_URL, connection strings) live there
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)


@dataclass(frozen=True)
class Go:
    """When the schedule starts and the measured window (wall clock, seconds)."""

    start: float
    window_start: float
    window_end: float


@dataclass(frozen=True)
class Drain:
    """What the sending sides sent and which sends failed: the receiving side waits for the rest."""

    sent: dict[str, bytes]
    failed: dict[str, bytes]
    events_acked: int
    timeout_s: float


class _Channel:
    """The side's end of its pipe: blocking sends (small), polled receives (the loop keeps running)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.stopped = False

    def send(self, kind: str, body: Any = None) -> None:
        self.conn.send((kind, body))

    def poll(self) -> tuple[str, Any] | None:
        if self.conn.poll():
            message = self.conn.recv()
            if message[0] == "stop":
                self.stopped = True
            return message
        return None

    async def expect(self, kind: str, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = self.poll()
            if message is not None:
                if message[0] == kind:
                    return message[1]
                if message[0] == "stop":
                    raise _Stopped
            await asyncio.sleep(0.005)
        raise TransportError(f"the runner sent no {kind!r} within {timeout_s:g} s")


class _Stopped(Exception):
    """The runner called the cell off (the other side failed)."""


def _transport(task: SideTask) -> Transport:
    module, _, name = task.transport.partition(":")
    cls = getattr(importlib.import_module(module), name)
    transport: Transport = cls(**dict(task.cell.transport_options))
    transport.plan(task.load)
    return transport


def _run(program: Any, task: SideTask, conn: Connection) -> None:
    """A side's process: Ctrl-C is the runner's to handle (it stops the sides and the servers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(task.environ)
    channel = _Channel(conn)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(program(task, channel))
    except _Stopped:
        channel.send("done", None)
    except (TransportError, OSError, ConnectionError, TimeoutError) as exc:
        channel.send("failed", str(exc) or type(exc).__name__)
    except BaseException as exc:  # noqa: BLE001 - anything else is reported, not lost with the process
        channel.send("failed", f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def _loop_factory() -> Any:
    """uvloop's event loop where installed (IOTBENCH_LOOP=asyncio turns it off), else asyncio's."""
    if os.environ.get("IOTBENCH_LOOP", "uvloop") == "uvloop":
        try:
            import uvloop
        except ImportError:
            return None
        return uvloop.new_event_loop
    return None


def sending_side(task: SideTask, conn: Connection) -> None:
    """The process entry of the sending side."""
    _run(_send, task, conn)


def receiving_side(task: SideTask, conn: Connection) -> None:
    """The process entry of the receiving side."""
    _run(_receive, task, conn)


async def _bounded(coro: Any) -> None:
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await coro
    except Exception:  # noqa: BLE001 - closing is best effort; the figures are already taken
        pass


# ---- the sending side --------------------------------------------------------------------


async def _send(task: SideTask, channel: _Channel) -> None:
    spec, cell, folder = task.spec, task.cell, Path(task.folder)
    codec, compression = get_codec(cell.codec), get_compression(cell.compression)
    shard, shards = task.shard, spec.sending_processes
    if spec.sending_cpus:
        os.sched_setaffinity(0, spec.sending_cpus)
    transport = _transport(task)
    senders: list[Any] = []
    dead_letter = DeadLetter(folder / f"dead-letter.sending-{shard}.jsonl")
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            await transport.start(task.endpoints)
            # this process's share of the connections: k = shard, shard + shards, ...
            senders = [await transport.open_sender(k) for k in range(shard, cell.connections, shards)]
        window = Window()
        publisher = Publisher(
            senders, codec, compression, batch=cell.batch, linger_s=spec.linger_ms / 1000.0,
            max_inflight=spec.max_inflight, send_timeout_s=spec.send_timeout_s, window=window,
            dead_letter=dead_letter,
        )  # fmt: skip
        config = FleetConfig(cell.devices, cell.interval_s, spec.jitter, spec.start_spread_s,
                             spec.seed + cell.repeat, id_prefix=f"{task.run_id}-", shard=shard,
                             shards=shards)  # fmt: skip
        fleet = Fleet(config)
        opened = read_now(0)  # what the connections exchanged to open: TCP, TLS, the protocol's connect
        # the fleet's device objects live for the whole cell: keep them out of the collector's
        # full passes, which would otherwise stall the schedule
        gc.collect()
        gc.freeze()
        channel.send("ready")
        go: Go = await channel.expect("go", START_TIMEOUT_S)
        window.start, window.end = go.window_start, go.window_end
        fleet.schedule(start=go.start, end=go.window_end)
        meter = _Meter(go, lambda: (publisher.events_sent, publisher.sizes.total, publisher.sends))
        await _drive(fleet, publisher, channel, meter)
        dead_letter.close()
        closing, closed = await _close_counted(senders)
        senders = []
        usage = {"opened": opened.to_dict(), **meter.to_dict(), "closing": closing.to_dict(),
                 "closed": closed.to_dict(), "peak_rss_mb": peak_rss_mb()}  # fmt: skip
        side = publisher.snapshot(fleet.scheduled, fleet.ledger())
        side = type(side)(**{**side.__dict__, "dead_letters": dead_letter.count,
                             "dead_letter_reasons": dict(dead_letter.reasons), "usage": usage})  # fmt: skip
        channel.send("done", {"side": side.to_wire(), "counters": dict(transport.counters())})
    finally:
        gc.unfreeze()
        dead_letter.close()
        for sender in senders:
            await _bounded(sender.close())
        await _bounded(transport.stop())


class _Meter:
    """This process's readings at the measured window's edges (``iotbench.pipeline.usage``)."""

    def __init__(self, go: Go, counts: Any, sockets: bool = True) -> None:
        self.window_start, self.window_end, self.counts, self.sockets = go.window_start, go.window_end, counts, sockets
        self.start: Reading | None = None
        self.end: Reading | None = None

    def tick(self, now: float) -> None:
        if self.start is None and now >= self.window_start:
            self.start = self._read()
        elif self.end is None and now >= self.window_end and self.start is not None:
            self.end = self._read()

    def _read(self) -> Reading:
        events, payload_bytes, sends = self.counts()
        return read_now(events, payload_bytes, sends, sockets=self.sockets)

    def to_dict(self) -> dict[str, Any]:
        empty = Reading().to_dict()
        return {
            "start": self.start.to_dict() if self.start else empty,
            "end": self.end.to_dict() if self.end else empty,
        }


async def _close_counted(senders: list[Any]) -> tuple[Reading, Reading]:
    """Close the senders, counting what the goodbye put on the wire: duplicates of the sockets keep
    the connections' counters until the protocol's close is done (``sockets.held``)."""
    sockets = held()
    try:
        closing = Reading(tcp=tcp_counters(sockets))
        for sender in senders:
            await _bounded(sender.close())
        await asyncio.sleep(CLOSE_SETTLE_S)  # the peer's answer (AMQP close, TLS close_notify) arrives
        return closing, Reading(tcp=tcp_counters(sockets))
    finally:
        for sock in sockets:
            sock.close()


async def _drive(fleet: Fleet, publisher: Publisher, channel: _Channel, meter: _Meter) -> None:
    """The open loop: at each wake, everything due goes out; nothing waits for acks."""
    next_report = 0.0
    offer = publisher.offer_many
    while True:
        now = time.time()
        meter.tick(now)
        due = fleet.due(now, DUE_CHUNK)
        offer(due.times, due.positions, due.readings)
        publisher.flush_due(now)
        if now >= next_report:
            channel.send("progress", publisher.events_sent)
            if channel.poll() and channel.stopped:
                raise _Stopped
            next_report = now + PROGRESS_S
        upcoming = fleet.next_due()
        if upcoming is None:
            break
        await publisher.wait_for_capacity()
        if len(due) == DUE_CHUNK:
            await asyncio.sleep(0)  # behind schedule: let the sends run, then go on
            continue
        wake = min(upcoming, publisher.next_deadline(), now + 0.1)
        # Event loops time in whole milliseconds (epoll's timeout; libuv's timers under uvloop, where
        # a shorter sleep fires at once): a wake less than a millisecond away is a millisecond away,
        # or the loop spins (measured: the whole core at 20,000 events/s).
        delay = wake - time.time()
        await asyncio.sleep(TIMER_S if 0.0 < delay < TIMER_S else max(delay, 0.0))
    meter.tick(max(time.time(), meter.window_end))  # the schedule ends with the window
    await publisher.finish()
    channel.send("progress", publisher.events_sent)


# ---- the receiving side ------------------------------------------------------------------


async def _receive(task: SideTask, channel: _Channel) -> None:
    spec, cell, folder = task.spec, task.cell, Path(task.folder)
    window = Window()
    store = JsonLinesColdStore(folder / "cold-store", roll_bytes=spec.cold_store.roll_bytes,
                               roll_s=spec.cold_store.roll_s)  # fmt: skip
    consumer = Consumer(
        get_codec(cell.codec), get_compression(cell.compression), store, DeadLetter(folder / "dead-letter.jsonl"),
        batched=cell.batch > 1, window=window, checkpoint_path=folder / "checkpoint.json", max_seq=task.max_seq,
        devices=cell.devices,
    )  # fmt: skip
    transport = _transport(task)
    receiver: Receiver | None = None
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            await transport.start(task.endpoints)
            receiver = await transport.open_receiver(consumer.deliver)
        consumer.checkpointers.append(receiver)  # its checkpoints (if any) follow the cold store
        channel.send("ready")
        go: Go = await channel.expect("go", START_TIMEOUT_S)
        window.start, window.end = go.window_start, go.window_end
        meter = _Meter(
            go, lambda: (consumer.ledger_events(), 0, 0), sockets=False
        )  # its CPU; the device link is the sender's
        drain = await _listen(consumer, receiver, channel, meter)
        await _drain(consumer, receiver, drain)
        await _bounded(receiver.close())
        receiver = None
        consumer.close()
        side = consumer.snapshot()
        side = type(side)(**{**side.__dict__, "usage": {**meter.to_dict(), "peak_rss_mb": peak_rss_mb()}})
        channel.send("done", {"side": side.to_wire(), "counters": dict(transport.counters())})
    finally:
        if receiver is not None:
            await _bounded(receiver.close())
        await _bounded(transport.stop())
        consumer.close()


def _check(receiver: Receiver) -> None:
    """A receiver whose stream broke, whose task died or whose consumer raised fails the cell."""
    reason = receiver.failure()
    if reason is not None:
        raise TransportError(f"receiver failed: {reason}")


async def _listen(consumer: Consumer, receiver: Receiver, channel: _Channel, meter: _Meter) -> Drain:
    """Receive until the runner says what was sent; roll the cold store and report as it goes."""
    next_report = 0.0
    while True:
        now = time.time()
        _check(receiver)
        consumer.tick(now)
        meter.tick(now)
        if now >= next_report:
            channel.send("progress", consumer.ledger_events())
            next_report = now + PROGRESS_S
        message = channel.poll()
        if message is not None and message[0] == "drain":
            drain: Drain = message[1]
            return drain
        if channel.stopped:
            raise _Stopped
        await asyncio.sleep(TICK_S)


async def _drain(consumer: Consumer, receiver: Receiver, drain: Drain) -> None:
    """Wait until every acknowledged event has been stored, or nothing arrives for QUIET_S,
    or the drain timeout; then, if some are still missing, listen LATE_S more: what arrives
    then is counted late, apart from lost.

    It waits on (device, seq), not on payload counts: a duplicate must not stand in for a
    missing event. The exact check runs only once the cheap count says it could pass.
    """
    sent, failed = ledger_from_wire(drain.sent), ledger_from_wire(drain.failed)
    deadline = time.monotonic() + drain.timeout_s
    last_seen, last_change = consumer.payloads, time.monotonic()
    next_exact = 0.0
    missing = None
    while time.monotonic() < deadline:
        _check(receiver)
        now = time.monotonic()
        if consumer.distinct >= drain.events_acked and now >= next_exact:
            missing = unstored(sent, consumer.ledger, skip=failed)
            if missing == 0:
                break
            next_exact = now + EXACT_CHECK_S
        if consumer.payloads != last_seen:
            last_seen, last_change = consumer.payloads, now
        elif now - last_change > QUIET_S:
            break
        await asyncio.sleep(0.01)
        consumer.tick(time.time())
    if missing != 0 and unstored(sent, consumer.ledger, skip=failed):
        consumer.count_late()
        late_deadline = time.monotonic() + LATE_S
        while time.monotonic() < late_deadline:
            await asyncio.sleep(0.05)
            consumer.tick(time.time())
        _check(receiver)
