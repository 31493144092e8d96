"""What every direct loop shares: the contract a loop fills, its timeline, payload and result, and
``measure_loop``, which starts the server, runs the receiver in a second process and the sender here.

A loop only connects, sends and counts; this module times it (STYLE: the runner measures). Every wait
is bounded (the receiver's start, the sender's acknowledgements, the receiver's drain): a loop that
cannot finish raises ``DirectLoopError`` saying what it waited for.
"""

from __future__ import annotations

import asyncio
import bisect
import multiprocessing
import queue
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iotbench.codecs import get_codec
from iotbench.studies.samples import sample_readings
from iotbench.transports.endpoints import Endpoint
from iotbench.transports.servers.base import Server

__all__ = [
    "DirectLoop",
    "DirectLoopError",
    "LoopResult",
    "Timeline",
    "bounded",
    "measure_loop",
    "run_async",
    "sample_payload",
]

CONNECT_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 60.0  # the receiver's process: spawn, import, connect, subscribe
ACK_TIMEOUT_S = 10.0  # after the window: what is still unacknowledged gets this long
QUIET_S = 2.0  # the receiver stops once it has everything, or nothing came for this long
POLL_S = 0.05  # the longest a loop blocks without checking its clock
WINDOW = 1000  # unacknowledged sends, as the harness's max_inflight (Kafka: 10,000 was no faster)
WARMUP_S, DURATION_S = 2.0, 10.0  # measure()'s defaults

Ready = Callable[[], None]
Stop = Callable[[int], bool]


class DirectLoopError(RuntimeError):
    """A direct loop could not run or finish within its bounds."""


class Timeline:
    """A counter's value (events, CPU seconds) over time on the monotonic clock (one clock for every
    process on Linux)."""

    STEP_S = 0.02

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._next = 0.0

    def sample(self, count: float) -> None:
        """Record ``count`` if ``STEP_S`` has passed since the last record: cheap enough per loop pass."""
        now = time.monotonic()
        if now >= self._next:
            self.samples.append((now, count))
            self._next = now + self.STEP_S

    def close(self, count: float) -> None:
        self.samples.append((time.monotonic(), count))

    def at(self, t: float) -> float:
        """The count at ``t``, interpolated between the samples around it."""
        samples = self.samples
        if not samples:
            return 0.0
        i = bisect.bisect_right(samples, (t, float("inf")))
        if i == 0:
            return 0.0  # before the first sample: every counter here starts at 0
        if i == len(samples):
            return float(samples[-1][1])
        (t0, c0), (t1, c1) = samples[i - 1], samples[i]
        return c0 + (c1 - c0) * (t - t0) / (t1 - t0)

    def rate(self, start: float, end: float) -> float:
        """Counted per second between ``start`` and ``end``."""
        return (self.at(end) - self.at(start)) / (end - start)


@dataclass(frozen=True)
class DirectLoop:
    """A sender run in this process and a receiver run in a second one, against ``server()``.

    ``receive`` travels to the receiver's process pickled: a module-level function or a ``partial`` of one.
    """

    label: str
    server: Callable[[], Server]
    send: Callable[[Endpoint, bytes, list[str], float, Timeline], tuple[int, int]]  # -> (sent, acknowledged)
    receive: Callable[[Endpoint, Ready, Stop, Timeline], int]  # -> delivered
    prepare: Callable[[Endpoint], None] | None = None


@dataclass(frozen=True)
class LoopResult:
    name: str
    label: str
    sent: int
    acked: int  # acknowledged by the server (MQTT QoS 0: written to the socket)
    delivered: int  # counted by the receiver
    acked_eps: float  # over the measured window
    delivered_eps: float
    duration_s: float
    sender_cpu_us: float  # CPU per event sent: this process, connect included
    receiver_cpu_us: float  # CPU per event delivered: the receiver's process, after it was ready
    window: tuple[float, float]  # the measured window on the monotonic clock

    @property
    def complete(self) -> bool:
        """Everything sent was acknowledged and delivered."""
        return self.sent == self.acked == self.delivered


def sample_payload() -> tuple[bytes, list[str]]:
    """The harness's batch-1 payload (a ``msgpack-array`` reading, 56 bytes) and 965 device ids."""
    readings = sample_readings(1000)
    return get_codec("msgpack-array").encode(readings[0]), sorted({r.device_id for r in readings})


def run_async(async_fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
    """``async_fn(*args)`` to completion on uvloop where installed: the fastest loop an asyncio client gets
    here. ``partial(run_async, fn)`` is a loop's ``send`` or ``receive`` (picklable, unlike a lambda)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(async_fn(*args))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(async_fn(*args))


def bounded(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise DirectLoopError(f"no {what} within the bound")


def _receiver_main(
    receive: Callable[[Endpoint, Ready, Stop, Timeline], int],
    endpoint: Endpoint,
    ready: Any,
    expected: Any,
    results: Any,
    bound_s: float,
) -> None:
    """The receiver's process: count until it has ``expected`` (set once the sender is done) or goes quiet."""
    hard_stop = time.monotonic() + bound_s
    last, changed = -1, time.monotonic()

    def stop(count: int) -> bool:
        nonlocal last, changed
        now = time.monotonic()
        if count != last:
            last, changed = count, now
        want = expected.value
        return now > hard_stop or (want >= 0 and (count >= want or now - changed > QUIET_S))

    timeline, cpu = Timeline(), [0.0]

    def on_ready() -> None:
        cpu[0] = time.process_time()
        ready.set()

    try:
        count = receive(endpoint, on_ready, stop, timeline)
        results.put(("ok", count, timeline.samples, time.process_time() - cpu[0]))
    except Exception as exc:  # noqa: BLE001 - the parent reports it with the loop's name
        results.put(("error", f"{type(exc).__name__}: {exc}", [], 0.0))


def _outcome(child: Any, results: Any, bound_s: float) -> tuple[str, Any, list[tuple[float, float]], float]:
    """The receiver's report; ("error", why, []) when it died without one or did not answer in time."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        try:
            return results.get(timeout=0.5)
        except queue.Empty:
            if not child.is_alive() and results.empty():
                return "error", f"its process ended (exit code {child.exitcode}) without a report", [], 0.0
    return "error", f"no report within {bound_s:g} s", [], 0.0


def measure_loop(
    name: str,
    loop: DirectLoop,
    workdir: Path,
    *,
    duration_s: float = DURATION_S,
    warmup_s: float = WARMUP_S,
    payload: bytes | None = None,
) -> LoopResult:
    """Run ``loop`` (registered as ``name``) for ``warmup_s + duration_s`` against a fresh server under
    ``workdir``; ``iotbench.studies.direct_loops.measure`` finds the loop by its name."""
    sample, keys = sample_payload()
    payload = sample if payload is None else payload
    server = loop.server()
    endpoint = server.start(Path(workdir).resolve() / name)
    try:
        if loop.prepare is not None:
            loop.prepare(endpoint)
        spawn = multiprocessing.get_context("spawn")  # a clean interpreter: no event loop or thread inherited
        ready, expected, results = spawn.Event(), spawn.RawValue("q", -1), spawn.Queue()
        bound_s = READY_TIMEOUT_S + warmup_s + duration_s + 2 * ACK_TIMEOUT_S + QUIET_S
        child = spawn.Process(
            target=_receiver_main, args=(loop.receive, endpoint, ready, expected, results, bound_s), daemon=True
        )
        child.start()
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not ready.wait(0.2):
                if not child.is_alive() or not results.empty():
                    raise DirectLoopError(f"{name}: the receiver failed: {_outcome(child, results, 1.0)[1]}")
                bounded(deadline, f"{name}: receiver ready")
            start = time.monotonic()
            begin, end = start + warmup_s, start + warmup_s + duration_s
            sent_timeline = Timeline()
            sent_timeline.close(0)
            cpu = time.process_time()
            sent, acked = loop.send(endpoint, payload, keys, end, sent_timeline)
            sender_cpu_s = time.process_time() - cpu
            expected.value = sent
            status, delivered, samples, receiver_cpu_s = _outcome(child, results, bound_s)
            if status != "ok":
                raise DirectLoopError(f"{name}: the receiver failed: {delivered}")
        finally:
            child.join(timeout=ACK_TIMEOUT_S)
            if child.is_alive():
                child.terminate()
                child.join(timeout=ACK_TIMEOUT_S)
    finally:
        server.stop()
    delivered_timeline = Timeline()
    delivered_timeline.samples = samples
    return LoopResult(
        name,
        loop.label,
        sent,
        acked,
        delivered,
        round(sent_timeline.rate(begin, end), 1),
        round(delivered_timeline.rate(begin, end), 1),
        duration_s,
        round(sender_cpu_s / max(sent, 1) * 1e6, 2),
        round(receiver_cpu_s / max(delivered, 1) * 1e6, 2),
        (begin, end),
    )
