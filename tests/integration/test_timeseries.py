"""The result's ``timeseries`` from real cells on the in-process transport: its bins add up to the
cell's totals exactly (sent, failed, stored), one or two sending processes, losses and copies too."""

from __future__ import annotations

import asyncio
import json

import pytest
from test_sending_processes import _fate, keyed_lossy  # noqa: F401 - the fixture, by name

from iotbench.model.spec import parse_spec
from iotbench.pipeline.runner import run_cell
from iotbench.results_api import load_timeseries

RATE = 2000  # events/s offered


def _spec(transport: str = "inprocess", processes: int = 1, **more):
    return parse_spec(
        {
            "codecs": ["json"],
            "transports": [transport],
            "batch": [10],
            "devices": RATE,
            "connections": 2,
            "interval_s": 1,
            "duration_s": 3,
            "warmup_s": 1,
            "drain_timeout_s": 2,
            "sending_processes": processes,
            **more,
        }
    )


def _window_bins(ts: dict) -> list[int]:
    start, end = ts["window"]
    return [i for i, t in enumerate(ts["t_s"]) if start <= t < end]


@pytest.mark.parametrize("processes", [1, 2])
def test_the_bins_add_up_to_the_cell_and_follow_the_offered_rate(tmp_path, processes):
    spec = _spec(processes=processes)
    result = asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell"))
    assert result.status == "ok", result.error
    ts = result.timeseries
    assert ts["bin_s"] == 1 and ts["window"] == [1.0, 4.0]
    assert ts["t_s"][:5] == [0.0, 1.0, 2.0, 3.0, 4.0]  # from the schedule's start, warm-up included
    n = len(ts["t_s"])
    assert all(len(ts[k]) == n for k in ("sent", "failed", "stored", "stored_intended"))
    assert sum(ts["sent"]) == result.events_sent == result.events_scheduled
    assert sum(ts["failed"]) == result.events_failed == 0
    assert sum(ts["stored"]) == sum(ts["stored_intended"]) == result.events_stored == result.events_sent
    window = _window_bins(ts)
    assert len(window) == 3
    # what was meant for the window and stored: throughput_eps, bin by bin
    assert sum(ts["stored_intended"][i] for i in window) == pytest.approx(result.throughput_eps * 3, abs=0.5)
    for i in window:
        assert ts["sent"][i] == pytest.approx(RATE, rel=0.1)
        assert ts["stored"][i] == pytest.approx(RATE, rel=0.1)
        assert ts["stored_intended"][i] == pytest.approx(RATE, rel=0.05)
        for kind in ("send_delay_ms", "publish_ms", "e2e_received_ms"):
            p50, p99 = ts[kind]["p50"][i], ts[kind]["p99"][i]
            assert p50 is not None and p99 is not None and 0 < p50 <= p99
        # a bin's p99 is within the cell's max (the bins hold 2 significant digits: 1 %)
        assert ts["e2e_received_ms"]["p99"][i] <= result.latency_ms["e2e_received"]["max"] * 1.01
    assert len(json.dumps(ts)) < 2000  # a few points: the line stays small


def test_failed_sends_losses_and_copies_across_two_processes_add_up(tmp_path, keyed_lossy):  # noqa: F811
    spec = _spec("keyed-lossy", 2, batch=[1])  # the keyed broker decides per reading
    result = asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell"))
    ts = result.timeseries
    assert result.events_failed and result.events_lost and result.events_duplicated
    assert sum(ts["sent"]) == result.events_sent
    assert sum(ts["failed"]) == result.events_failed
    assert all(f <= s for f, s in zip(ts["failed"], ts["sent"]))
    # stored counts each (device, seq) once, in the bin its first copy arrived
    assert sum(ts["stored"]) == sum(ts["stored_intended"]) == result.events_stored
    assert result.events_stored == result.events_sent - result.events_lost
    assert _fate  # the broker's choices are keyed: the other test file checks them one by one


def test_load_timeseries_gives_one_row_per_cell_bin_and_metric(tmp_path):
    from iotbench.model.results import append_result

    spec = _spec()
    out = tmp_path / "run"
    for repeat in range(2):
        cell = spec.cells()[0]
        result = asyncio.run(run_cell(spec, cell, out / "cells" / f"00{repeat}"))
        append_result(out / "results.jsonl", result.__class__(**{**result.to_dict(), "repeat": repeat}))
    df = load_timeseries(out)
    assert set(df.columns) >= {"cell", "repeat", "t_s", "in_window", "metric", "value"}
    sent = df[df.metric == "sent"].groupby("repeat")["value"].sum()
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sent.tolist() == [r["events_sent"] for r in records]
    assert set(df.metric) >= {"stored", "send_delay_p99_ms", "e2e_received_p50_ms"}
    p99 = df[(df.metric == "e2e_received_p99_ms") & df.in_window]
    assert len(p99) == 2 * 3 and p99["value"].notna().all()
