"""The per-second recorders (``iotbench.pipeline.series``) against a direct computation: each bin's
counts by a loop over the events, each bin's percentiles by an HdrHistogram of its own."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from iotbench.pipeline.accounting import StoreLedger
from iotbench.pipeline.consumer import Window
from iotbench.pipeline.metrics import MAX_US, bucket_indices
from iotbench.pipeline.series import (
    MAX_POINTS,
    ReceiveSeries,
    SendSeries,
    Tally,
    bin_width,
    merge_series,
    timeseries,
)

START = 1_800_000_000.25  # the window's start: bins are aligned to it, not to whole epoch seconds
WARMUP, DURATION = 2.0, 4.0


def _window() -> Window:
    return Window(START, START + DURATION)


def _direct_percentiles(values_by_bin: dict[int, list[float]], lo: int, n: int) -> dict[str, list[float | None]]:
    """Each bin's p50 and p99 as an HdrHistogram (2 significant digits) of its own says, in ms."""
    out: dict[str, list[float | None]] = {"p50": [None] * n, "p99": [None] * n}
    for b, values in values_by_bin.items():
        h = HdrHistogram(1, MAX_US, 2)
        for v in values:
            h.record_value(min(max(int(v * 1_000_000.0), 1), MAX_US))
        for name, pct in (("p50", 50.0), ("p99", 99.0)):
            out[name][b - lo] = round(h.get_value_at_percentile(pct) / 1000.0, 3)
    return out


def _bin(t: float) -> int:
    return math.floor(t - START)


def test_bucket_indices_are_record_value_s_at_two_digits():
    h = HdrHistogram(1, MAX_US, 2)
    rng = random.Random(5)
    values = [1, 2, 127, 128, 255, 256, 1000, 65_535, MAX_US] + [int(10 ** rng.uniform(0, 9.5)) for _ in range(2000)]
    for v in values:
        h.record_value(v)
    ours = np.bincount(bucket_indices(h, np.array(values, dtype=np.int64)), minlength=h.counts_len)
    assert ours.tolist() == [h.get_count_at_index(i) for i in range(h.counts_len)]


def test_bins_widen_so_a_window_keeps_at_most_max_points():
    assert [bin_width(d) for d in (2, 60, 600, 600.0000001, 601, 3600, 86_400)] == [1, 1, 1, 1, 2, 6, 144]
    assert MAX_POINTS == 600


def test_send_series_against_a_direct_computation():
    rng = random.Random(11)
    window = _window()
    series = SendSeries(window)
    sends = []
    for _ in range(30_000):  # more than one flush's worth
        intended = START + rng.uniform(-WARMUP, DURATION)
        started = intended + rng.expovariate(1 / 0.004)
        ended = started + rng.expovariate(1 / 0.0005)
        events, ok = rng.randint(1, 100), rng.random() > 0.05
        (series.send if ok else series.failed)(intended, started, ended, events)
        sends.append((intended, started, ended, events, ok))
    out = timeseries(series.to_wire(), {}, WARMUP, DURATION)

    lo = min(min(_bin(s[0]), _bin(s[1])) for s in sends)
    hi = max(max(_bin(s[0]), _bin(s[1])) for s in sends)
    n = hi - lo + 1
    assert out["bin_s"] == 1 and out["window"] == [WARMUP, WARMUP + DURATION]
    assert out["t_s"] == [WARMUP + b for b in range(lo, hi + 1)]
    sent, failed = [0] * n, [0] * n
    delays: dict[int, list[float]] = {}
    publish: dict[int, list[float]] = {}
    for intended, started, ended, events, ok in sends:
        sent[_bin(started) - lo] += events
        if not ok:
            failed[_bin(started) - lo] += events
        delays.setdefault(_bin(intended), []).append(started - intended)
        if ok:
            publish.setdefault(_bin(intended), []).append(ended - started)
    assert out["sent"] == sent and out["failed"] == failed
    assert sum(out["sent"]) == sum(s[3] for s in sends)
    assert out["send_delay_ms"] == _direct_percentiles(delays, lo, n)
    assert out["publish_ms"] == _direct_percentiles(publish, lo, n)
    assert out["stored"] == [0] * n and out["e2e_received_ms"] == {"p50": [None] * n, "p99": [None] * n}


def test_receive_series_counts_first_copies_by_arrival_and_by_intended_second():
    rng = random.Random(12)
    window = _window()
    ledger = StoreLedger(max_seq=100, devices=10)
    series = ReceiveSeries(window)
    ledger.on_count = series.stored
    seen: set[tuple[str, int]] = set()
    stored: dict[int, int] = {}
    stored_intended: dict[int, int] = {}
    e2e: dict[int, list[float]] = {}
    due = {(f"d{d}", s): START - WARMUP + s * 0.06 + d * 0.001 for d in range(10) for s in range(101)}
    for _ in range(3000):  # payloads of up to 8 readings, copies included (at-least-once delivery)
        pairs = [rng.choice(list(due)) for _ in range(rng.randint(1, 8))]
        now = max(due[p] for p in pairs) + rng.expovariate(1 / 0.01)
        observed = [due[p] for p in pairs]
        series.received(now, observed)
        ledger.add([d for d, _ in pairs], [s for _, s in pairs], [True] * len(pairs))
        if rng.random() < 0.1:
            assert ledger.distinct == len(seen | set(pairs))  # a count mid-way: the series is fed there too
        for pair, t in zip(pairs, observed):
            if pair not in seen:
                seen.add(pair)
                stored[_bin(now)] = stored.get(_bin(now), 0) + 1
                stored_intended[_bin(t)] = stored_intended.get(_bin(t), 0) + 1
            e2e.setdefault(_bin(t), []).append(now - t)
    if not series._times:  # the last payload was counted: one more, not yet
        pair = next(iter(seen))
        series.received(due[pair] + 0.5, [due[pair]])
        ledger.add([pair[0]], [pair[1]], [True])
        e2e[_bin(due[pair])].append(0.5)
    with pytest.raises(RuntimeError, match="take the ledger first"):
        series.to_wire()
    assert ledger.distinct == len(seen)
    out = timeseries({}, series.to_wire(), WARMUP, DURATION)
    lo = _bin(min(due.values()))
    n = len(out["t_s"])
    assert out["t_s"][0] == WARMUP + lo
    assert out["stored"] == [stored.get(lo + i, 0) for i in range(n)]
    assert out["stored_intended"] == [stored_intended.get(lo + i, 0) for i in range(n)]
    assert sum(out["stored"]) == sum(out["stored_intended"]) == len(seen)
    assert out["e2e_received_ms"] == _direct_percentiles(e2e, lo, n)


def test_processes_bins_merge_exactly():
    rng = random.Random(13)
    whole, parts = SendSeries(_window()), [SendSeries(_window()), SendSeries(_window())]
    for i in range(5000):
        intended = START + rng.uniform(-WARMUP, DURATION)
        send = (intended, intended + rng.expovariate(100.0), intended + 0.02, rng.randint(1, 5))
        whole.send(*send)
        parts[i % 2].send(*send)
    merged = merge_series([p.to_wire() for p in parts])
    assert merged == whole.to_wire()
    assert timeseries(merged, {}, WARMUP, DURATION) == timeseries(whole.to_wire(), {}, WARMUP, DURATION)


def test_tally_merges_and_travels_exactly():
    a, b = Tally(), Tally()
    a.add(np.array([5, -3, 5, 7], dtype=np.int64))
    b.add(np.array([7, 9], dtype=np.int64), np.array([10, 1], dtype=np.int64))
    a.merge(Tally.from_wire(b.to_wire()))
    keys, counts = a.items()
    assert keys.tolist() == [-3, 5, 7, 9] and counts.tolist() == [1, 2, 11, 1]


def test_a_long_window_gets_wide_bins_and_a_short_line():
    window = Window(START, START + 3600)
    series = SendSeries(window)
    for k in range(-5, 3600):
        series.send(START + k + 0.5, START + k + 0.501, START + k + 0.502, 100)
    out = timeseries(series.to_wire(), {}, 5.0, 3600.0)
    assert out["bin_s"] == 6 and len(out["t_s"]) == 601  # one warm-up bin, 600 in the window
    assert out["t_s"][:2] == [-1.0, 5.0] and out["sent"][0] == 500 and out["sent"][1:] == [600] * 600
    assert sum(out["sent"]) == 100 * 3605


def test_nothing_recorded_is_an_empty_series():
    assert timeseries({}, {}, WARMUP, DURATION) == {}
    assert timeseries(SendSeries(_window()).to_wire(), {}, WARMUP, DURATION) == {}


def test_readings_from_before_the_schedule_count_in_its_first_bin():
    """A broker's event from an earlier run: counted before the window is known, due an hour ago."""
    window = Window()  # the schedule has not started: start and end unknown
    ledger = StoreLedger(max_seq=10, devices=2)
    series = ReceiveSeries(window)
    ledger.on_count = series.stored
    old = START - 3600.0
    series.received(START - 30.0, [old])
    ledger.add(["d0"], [1], [False])
    assert ledger.distinct == 1  # counted now, binned once the window is known
    window.start, window.end = START, START + DURATION
    series.received(START + 0.5, [START + 0.4, START + 0.45])
    ledger.add(["d1", "d1"], [1, 2], [True, True])
    assert ledger.distinct == 3
    out = timeseries({}, series.to_wire(), WARMUP, DURATION)
    assert out["t_s"] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # the schedule's start to the window's end
    assert out["stored"] == [1, 0, 2, 0, 0, 0] and out["stored_intended"] == [1, 0, 2, 0, 0, 0]
    assert out["e2e_received_ms"]["p99"][0] == pytest.approx(3_570_000, rel=0.01)
