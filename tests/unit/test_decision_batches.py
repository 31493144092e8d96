"""Serializations are compared where every one of them ran, never one codec's single sends against
another's gateway batches (the default spec once left json out of batch 1, and protobuf "won" alone)."""

from __future__ import annotations

import json
from pathlib import Path

from iotbench.report.decision import decide
from iotbench.results_api import load_results


def _record(codec: str, batch: int, size: float, transport: str = "inprocess") -> dict:
    cell = f"{codec}/{transport}/b{batch}/none/c1/d1000@1s"
    return {
        "cell": cell,
        "codec": codec,
        "transport": transport,
        "transport_options": {},
        "batch": batch,
        "compression": "none",
        "connections": 1,
        "devices": 1000,
        "interval_s": 1.0,
        "duration_s": 5.0,
        "warmup_s": 1.0,
        "repeat": 0,
        "target_eps": 1000.0,
        "status": "ok",
        "error": None,
        "events_scheduled": 6000,
        "events_sent": 6000,
        "events_acked": 6000,
        "events_failed": 0,
        "events_stored": 6000,
        "events_lost": 0,
        "events_duplicated": 0,
        "events_rejected": 0,
        "events_unexpected": 0,
        "sends": 6000 // batch,
        "throughput_eps": 1000.0,
        "latency_ms": {"send_delay": {"p99": 1.0}, "e2e_received": {"p99": 2.0}, "publish": {"p99": 1.0}},
        "payload_bytes": {"mean": size, "min": size, "max": size},
        "send_bytes": {"mean": size * batch, "min": size * batch, "max": size * batch},
        "cold_store": f"cells/{codec}-{batch}/cold-store",
        "dead_letter": None,
        "started_at": "2026-01-01T00:00:00+00:00",
        "elapsed_s": 7.0,
        "schema_version": 1,
    }


def test_codecs_are_compared_at_the_batch_every_one_ran(tmp_path: Path) -> None:
    records = [
        _record("protobuf", 1, 100.0),
        _record("protobuf", 100, 40.0),
        _record("json", 100, 50.0),
        _record("protobuf", 1, 100.0, transport="mqtt"),
        _record("json", 100, 50.0, transport="mqtt"),
    ]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    decision = decide(load_results(tmp_path))
    assert decision.batch == 100
    assert decision.serialization == "protobuf" and decision.serialization_runner_up == "json"
    assert not any("Only one serialization" in gap for gap in decision.gaps)


def test_a_codec_that_missed_the_shared_batch_is_named(tmp_path: Path) -> None:
    records = [_record("protobuf", 1, 100.0), _record("msgpack", 1, 90.0), _record("json", 100, 50.0)]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    decision = decide(load_results(tmp_path))
    assert decision.batch == 1 and decision.serialization == "msgpack"
    assert any("json" in gap and "batch 1" in gap for gap in decision.gaps)
