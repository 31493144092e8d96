"""A cell second by second: what was sent and stored, and how late, per bin of ``bin_s`` seconds.

Each side records into bins aligned to the measured window's start (bin 0 starts there, warm-up
bins are negative) and hands the runner its bins as sparse counts, which merge exactly across
sending processes (counts add):

- rates by when they happened: ``sent`` and ``failed`` events by the second their send started,
  ``stored`` (distinct (device, seq), the first copy) by the second it reached the consumer;
  ``stored_intended``: the same readings by their intended second;
- latencies by the reading's intended second (as the cell's histograms: coordinated omission
  shows in the second a reading was due, not in the second its late send finally started):
  ``send_delay`` and ``publish`` per send, ``e2e_received`` per reading (copies included).

A latency bin is a small HdrHistogram: counts per bucket with the bucket arithmetic of
``Latency`` (``metrics.bucket_indices``) at 2 significant digits, kept sparse as
(bin * buckets + bucket) -> count. A cell's schedule gets at most ``MAX_POINTS`` bins of its
window: a longer window gets wider bins (``bin_width``: 1 h -> 6 s), so a result line stays small.

    series = SendSeries(window)            # the publisher's, one per process
    series.send(intended, started, ended, events)   # per acknowledged send (``failed`` per failed one)
    timeseries(send_wire, receive_wire, warmup_s, duration_s)  # the result's ``timeseries``
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
from hdrh.histogram import HdrHistogram

from iotbench.pipeline.metrics import MAX_US, bucket_indices

__all__ = ["MAX_POINTS", "ReceiveSeries", "SendSeries", "Tally", "bin_width", "merge_series", "timeseries"]

MAX_POINTS = 600  # bins of the measured window: 10 min at 1 s; a longer window gets wider bins
_SHAPE = HdrHistogram(1, MAX_US, 2)  # a bin's buckets: 1 us .. 1 h at 2 significant digits (1 %)
_BUCKETS = _SHAPE.counts_len
_PERCENTILES = {"p50": 50.0, "p99": 99.0}
_LATENCIES = ("send_delay", "publish", "e2e_received")  # tallies keyed by (bin, bucket)
_FLUSH_AT = 8192  # sends (floats: 4 each) buffered before they are binned in bulk
_DENSE_SPAN = 1 << 18  # keys a batch may span and still be counted densely (~100 latency bins)

Wire = dict[str, Any]


class Span(Protocol):
    """The measured window (``consumer.Window``): wall-clock seconds, set when the schedule starts."""

    start: float
    end: float


def bin_width(duration_s: float) -> int:
    """Seconds per bin: 1, or wider so a window of ``duration_s`` has at most ``MAX_POINTS`` bins."""
    return max(1, math.ceil(round(duration_s, 3) / MAX_POINTS))


class Tally:
    """Counts by integer key, sparse; ``add`` in bulk, merged exactly (counts of a key add up)."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, keys: np.ndarray, weights: np.ndarray | None = None) -> None:
        if not len(keys):
            return
        lo = int(keys.min())
        span = int(keys.max()) - lo + 1
        if span <= _DENSE_SPAN:  # the usual batch: a bin or two -- a count per key in one pass, no sort
            dense = np.bincount(keys - lo, weights=weights, minlength=span)
            unique = np.flatnonzero(dense)
            counts, unique = dense[unique], unique + lo
        else:
            unique, inverse = np.unique(keys, return_inverse=True)
            counts = np.bincount(inverse, weights=weights, minlength=len(unique))
        self._parts.append((unique, counts.astype(np.int64)))
        if len(self._parts) >= 64:
            self.items()

    def merge(self, other: Tally) -> None:
        self._parts.extend(other._parts)
        self.items()

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys ascending, their counts)."""
        if not self._parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if len(self._parts) > 1:
            keys = np.concatenate([k for k, _ in self._parts])
            unique, inverse = np.unique(keys, return_inverse=True)
            counts = np.bincount(inverse, weights=np.concatenate([c for _, c in self._parts]), minlength=len(unique))
            self._parts = [(unique, counts.astype(np.int64))]
        return self._parts[0]

    def to_wire(self) -> tuple[bytes, bytes]:
        keys, counts = self.items()
        return keys.astype(np.int64).tobytes(), counts.astype(np.int64).tobytes()

    @classmethod
    def from_wire(cls, wire: tuple[bytes, bytes]) -> Tally:
        tally = cls()
        keys, counts = (np.frombuffer(b, dtype=np.int64) for b in wire)
        if len(keys):
            tally._parts.append((keys, counts))
        return tally


def _bins(times: np.ndarray, window: Span, width: int) -> np.ndarray:
    return np.floor((times - window.start) / width).astype(np.int64)


def _latency_keys(bins: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """(bin, bucket) as one key; values truncated to whole microseconds and clipped as ``Latency`` does."""
    values = np.clip((seconds * 1_000_000.0).astype(np.int64), 1, MAX_US)
    return bins * _BUCKETS + bucket_indices(_SHAPE, values)


class SendSeries:
    """The sending side's bins: ``send(intended, started, ended, events)`` per acknowledged send,
    ``failed(...)`` per failed one (the publisher's ``_done``; four floats appended, binned in bulk)."""

    def __init__(self, window: Span) -> None:
        self.window = window
        # flat (intended, started, ended, events) of each send: a list's extend by a tuple costs ~40 ns
        # a send and numpy converts it at ~10 ns a value (array("d").extend took 280 ns, measured)
        self._ok: list[float] = []
        self._failed: list[float] = []
        self.tallies = {name: Tally() for name in ("sent", "failed", "send_delay", "publish")}

    def send(self, intended: float, started: float, ended: float, events: int) -> None:
        ok = self._ok
        ok += (intended, started, ended, events)
        if len(ok) >= 4 * _FLUSH_AT:
            self._flush()

    def failed(self, intended: float, started: float, ended: float, events: int) -> None:
        self._failed += (intended, started, ended, events)

    def _flush(self) -> None:
        width = bin_width(self.window.end - self.window.start)
        t = self.tallies
        for flat, ok in ((self._ok, True), (self._failed, False)):
            if not flat:
                continue
            rows = np.array(flat, dtype=np.float64).reshape(-1, 4)
            intended, started, ended, events = rows.T
            events = events.astype(np.int64)
            sent_bins, due_bins = _bins(started, self.window, width), _bins(intended, self.window, width)
            t["sent"].add(sent_bins, events)
            t["send_delay"].add(_latency_keys(due_bins, started - intended))
            if ok:
                t["publish"].add(_latency_keys(due_bins, ended - started))
            else:
                t["failed"].add(sent_bins, events)
        self._ok, self._failed = [], []

    def to_wire(self) -> Wire:
        self._flush()
        return {"bin_s": bin_width(self.window.end - self.window.start),
                **{name: tally.to_wire() for name, tally in self.tallies.items()}}  # fmt: skip


class ReceiveSeries:
    """The receiving side's bins: ``received(now, observed)`` per payload (the intended times of its
    valid readings, in the order the consumer hands them to its ``StoreLedger``), ``stored(fresh)``
    when the ledger has counted them (``StoreLedger.on_count``: which were first copies)."""

    def __init__(self, window: Span) -> None:
        self.window = window
        self._times: list[float] = []
        self._arrivals: list[float] = []
        self._sizes: list[int] = []
        self._early: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # counted before the window was known
        self.tallies = {name: Tally() for name in ("stored", "stored_intended", "e2e_received")}

    def received(self, now: float, observed: list[float]) -> None:
        self._times += observed
        self._arrivals.append(now)
        self._sizes.append(len(observed))

    def stored(self, fresh: np.ndarray) -> None:
        times = np.array(self._times, dtype=np.float64)
        arrivals = np.repeat(np.array(self._arrivals, dtype=np.float64), self._sizes)
        self._times, self._arrivals, self._sizes = [], [], []
        if len(fresh) != len(times):
            raise RuntimeError(f"the ledger counted {len(fresh)} readings, the series has {len(times)}")
        if not math.isfinite(self.window.start):  # before the schedule started (a broker's old events)
            self._early.append((times, arrivals, fresh))
            return
        while self._early:
            self._bin(*self._early.pop())
        self._bin(times, arrivals, fresh)

    def _bin(self, times: np.ndarray, arrivals: np.ndarray, fresh: np.ndarray) -> None:
        width = bin_width(self.window.end - self.window.start)
        due_bins = _bins(times, self.window, width)
        t = self.tallies
        t["stored"].add(_bins(arrivals[fresh], self.window, width))
        t["stored_intended"].add(due_bins[fresh])
        t["e2e_received"].add(_latency_keys(due_bins, arrivals - times))

    def to_wire(self) -> Wire:
        if self._times:
            raise RuntimeError("readings received but not yet counted by the ledger: take the ledger first")
        while self._early and math.isfinite(self.window.start):
            self._bin(*self._early.pop())
        return {"bin_s": bin_width(self.window.end - self.window.start),
                **{name: tally.to_wire() for name, tally in self.tallies.items()}}  # fmt: skip


def merge_series(parts: list[Wire]) -> Wire:
    """Several processes' bins as one (counts add): the sending side's ``series`` from its processes'."""
    parts = [p for p in parts if p]
    if len(parts) <= 1:
        return parts[0] if parts else {}
    out: Wire = {"bin_s": parts[0]["bin_s"]}
    for name in parts[0]:
        if name != "bin_s":
            tally = Tally()
            for part in parts:
                tally.merge(Tally.from_wire(part[name]))
            out[name] = tally.to_wire()
    return out


def _counts(tally: Tally, lo: int, n: int) -> list[int]:
    keys, counts = tally.items()
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, keys - lo, counts)
    return out.tolist()


def _percentiles(tally: Tally, lo: int, n: int) -> dict[str, list[float | None]]:
    """Per bin, HdrHistogram's ``get_value_at_percentile`` on the bin's counts, in ms (None: no value)."""
    out: dict[str, list[float | None]] = {name: [None] * n for name in _PERCENTILES}
    keys, counts = tally.items()
    if not len(keys):
        return out
    bins, buckets = keys // _BUCKETS, keys % _BUCKETS
    cum = np.cumsum(counts)
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    before = np.where(starts > 0, cum[starts - 1], 0)
    total = cum[ends - 1] - before
    for name, pct in _PERCENTILES.items():
        target = np.maximum((pct * total / 100 + 0.5).astype(np.int64), 1)
        at = np.searchsorted(cum, before + target, side="left")
        for b, bucket in zip(bins[starts].tolist(), buckets[at].tolist()):
            value = _SHAPE.get_highest_equivalent_value(_SHAPE.get_value_from_index(bucket))
            out[name][b - lo] = round(value / 1000.0, 3)
    return out


def _folded(tally: Tally, latency: bool, lo: int, hi: int) -> Tally:
    """``tally`` with bins below ``lo`` counted in ``lo``, above ``hi`` in ``hi`` (sums unchanged)."""
    keys, counts = tally.items()
    scale = _BUCKETS if latency else 1
    bins = keys // scale
    if not len(keys) or (bins.min() >= lo and bins.max() <= hi):
        return tally
    out = Tally()
    out.add(np.clip(bins, lo, hi) * scale + keys % scale, counts)
    return out


def timeseries(send: Wire, receive: Wire, warmup_s: float, duration_s: float) -> dict[str, Any]:
    """The result's ``timeseries`` from the merged sending side's bins and the receiving side's
    ({} when nothing was sent or stored).

    The bins run from the schedule's start to the later of the window's end and the last send or
    arrival. What falls outside counts in the first or last bin, so the bins still add up: a reading
    due before the schedule started (a broker's event from an earlier run) or stamped in the future.
    """
    tallies = {
        name: Tally.from_wire(wire) for side in (send, receive) for name, wire in side.items() if name != "bin_s"
    }
    happened = [tallies[name].items()[0] for name in ("sent", "stored") if name in tallies]
    seen = np.concatenate(happened) if happened else np.zeros(0, np.int64)
    if not len(seen):
        return {}
    width = (send or receive)["bin_s"]
    lo = math.floor(round(-warmup_s / width, 9))  # the bin the schedule starts in
    hi = max(int(seen.max()), math.ceil(round(duration_s / width, 9)) - 1)
    n = hi - lo + 1
    out: dict[str, Any] = {
        "bin_s": width,
        "t_s": [round(warmup_s + (lo + i) * width, 3) for i in range(n)],
        "window": [warmup_s, warmup_s + duration_s],
    }
    for name in ("sent", "failed", "stored", "stored_intended"):
        out[name] = _counts(_folded(tallies.get(name, Tally()), False, lo, hi), lo, n)
    for name in _LATENCIES:
        out[f"{name}_ms"] = _percentiles(_folded(tallies.get(name, Tally()), True, lo, hi), lo, n)
    return out
