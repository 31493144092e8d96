"""The direct client loops (iotbench.studies.direct_loops): counted rates, bounded waits, a real loop end to end."""

from __future__ import annotations

import multiprocessing
import sys
import time

import pytest
from support import need_server

from iotbench.codecs import get_codec
from iotbench.studies.direct_loops import LOOPS, Timeline, measure, sample_payload
from iotbench.studies.direct_loops.base import _outcome
from iotbench.transports import TransportError


def test_timeline_interpolates_between_samples_and_holds_at_the_ends():
    timeline = Timeline()
    timeline.samples = [(10.0, 0), (11.0, 1000), (13.0, 1000), (14.0, 4000)]
    assert timeline.at(9.0) == 0 and timeline.at(10.5) == 500 and timeline.at(12.0) == 1000
    assert timeline.at(20.0) == 4000
    assert timeline.rate(10.0, 14.0) == 1000.0
    assert timeline.rate(13.5, 14.0) == 3000.0


def test_the_payload_is_the_harness_batch_1_payload():
    payload, keys = sample_payload()
    assert len(payload) == 56 and len(keys) == len(set(keys)) > 900
    reading = get_codec("msgpack-array").decode(payload)
    assert reading.device_id in keys


def test_a_receiver_process_that_dies_without_a_report_is_named_within_the_bound():
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=sys.exit, args=(3,))
    child.start()
    started = time.monotonic()
    status, reason, samples, _ = _outcome(child, results, bound_s=20.0)
    assert status == "error" and "exit code 3" in reason and samples == []
    assert time.monotonic() - started < 5.0


@pytest.mark.server
@pytest.mark.parametrize("name", ["mqtt-qos1"])
def test_a_direct_loop_delivers_everything_it_sent(tmp_path, name):
    try:
        result = measure(name, tmp_path, duration_s=0.5, warmup_s=0.2)
    except TransportError as exc:
        if "not installed" in str(exc):
            need_server(str(exc))
        raise
    assert result.sent > 100 and result.complete, result
    assert result.delivered_eps > 0 and result.acked_eps > 0
    assert name in LOOPS.names() and result.label == LOOPS.load(name).label
