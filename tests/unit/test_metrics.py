"""Bulk recording gives exactly the counts HdrHistogram's own record_value gives."""

from __future__ import annotations

import random

from hdrh.histogram import HdrHistogram

from iotbench.pipeline.metrics import Latency, SizeStats


def test_bulk_recording_matches_record_value():
    rng = random.Random(5)
    values = [rng.expovariate(100.0) for _ in range(30_000)] + [0.0, -0.001, 5000.0, 0.25]
    fast, ref = Latency(), HdrHistogram(1, 3_600_000_000, 3)
    for v in values:
        fast.record(v)
        ref.record_value(min(max(int(v * 1e6), 1), 3_600_000_000))
    assert fast.count == ref.get_total_count() == len(values)
    assert list(fast.hist.counts) == list(ref.counts)
    assert fast.hist.get_max_value() == ref.get_max_value()
    # the negative and zero values (clipped up to 1 us) are counted as well as the one over an hour
    out_of_range = sum(1 for v in values if not 1 <= int(v * 1e6) <= 3_600_000_000)
    assert out_of_range >= 3 and fast.clipped_count == out_of_range
    assert fast.summary_ms()["p99"] == round(ref.get_value_at_percentile(99) / 1000, 3)


def test_merge_and_encoding_are_exact():
    a, b = Latency(), Latency()
    for i in range(1, 1000):
        a.record(i / 1e4)
        b.record(i / 1e3)
    both = Latency.decode(a.encoded())
    both.merge(Latency.decode(b.encoded()))
    assert both.count == 1998
    assert both.summary_ms()["max"] == b.summary_ms()["max"]


def test_size_stats_per_event_and_per_send():
    sizes = SizeStats()
    sizes.add_send(1000, 10)
    sizes.add_send(150, 1)
    assert sizes.per_event() == {"mean": round(1150 / 11, 2), "min": 100.0, "max": 150.0}
    assert sizes.per_send() == {"mean": 575.0, "min": 150, "max": 1000}


def test_record_many_is_record_for_each():
    one, many = Latency(), Latency()
    values = [i / 7e4 for i in range(20_000)]
    for v in values:
        one.record(v)
    many.record_many(values)
    assert one.count == many.count == 20_000  # count flushes the buffers first
    assert list(one.hist.counts) == list(many.hist.counts)
