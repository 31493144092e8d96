"""Benchmarks of the harness itself (run with --benchmark-only; the figures go in the README).

1. The in-process full path (fleet -> encode -> transport -> decode -> cold store)
   on one core, batched: the highest sustained events/s (target >= 100,000, 60x
   the contract rate, so the harness is never the bottleneck of a comparison).
2. Fabrikam's contract rate, 100,000 devices at 60 s: the send delay p99 (target < 10 ms).

Run as plain tests (``--benchmark-disable``, what CI does) they keep their assertions on
short cells: the figures come only from ``--benchmark-only`` runs.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from iotbench.model.spec import parse_spec
from iotbench.pipeline.runner import run_cell
from iotbench.studies.ratesearch import search_rate


@pytest.fixture
def one_core():
    """Pin the harness to one core, as the figure claims."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    yield
    os.sched_setaffinity(0, before)


def test_inprocess_full_path_sustained_rate(benchmark, tmp_path, one_core):
    measuring = not benchmark.disabled
    spec = parse_spec(
        {
            "codecs": ["msgpack"],
            "transports": ["inprocess"],
            "batch": [100],
            "duration_s": 8 if measuring else 2,
            "warmup_s": 2 if measuring else 0.5,
            "linger_ms": 20,
        }
    )
    rates = [60_000, 80_000, 100_000, 110_000, 120_000, 135_000, 150_000] if measuring else [20_000]
    best, results = benchmark.pedantic(
        lambda: search_rate(spec, spec.cells()[0], rates, tmp_path), rounds=1, iterations=1
    )
    benchmark.extra_info["sustained_eps"] = best
    benchmark.extra_info["trials"] = [
        {
            "offered_eps": r.target_eps,
            "stored_eps": r.throughput_eps,
            "send_delay_p99_ms": r.latency_ms["send_delay"]["p99"],
            "lost": r.events_lost,
        }
        for r in results
    ]
    print(f"\nin-process full path, msgpack, batch 100, one core: sustained {best} events/s; trials:")
    for trial in benchmark.extra_info["trials"]:
        print("  ", trial)
    assert all(r.events_lost == 0 for r in results)


@pytest.mark.parametrize("batch", [1, 100])
def test_contract_rate_send_delay(benchmark, tmp_path, one_core, batch):
    measuring = not benchmark.disabled
    spec = parse_spec(
        {
            "codecs": ["msgpack"],
            "transports": ["inprocess"],
            "batch": [batch],
            "devices": 100_000,
            "interval_s": 60,
            "duration_s": 30 if measuring else 3,
            "warmup_s": 5 if measuring else 1,
        }
    )
    result = benchmark.pedantic(
        lambda: asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell")), rounds=1, iterations=1
    )
    delay = result.latency_ms["send_delay"]
    benchmark.extra_info.update(send_delay_ms=delay, throughput_eps=result.throughput_eps, lost=result.events_lost)
    print(f"\n100,000 devices at 60 s, batch {batch}: send delay {delay}, {result.throughput_eps} events/s stored")
    assert result.events_lost == 0
