"""The cold store publishes whole files only, rolls them, and the checkpoint follows durability."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import msgspec

from iotbench.pipeline.coldstore import JsonLinesColdStore, read_jsonl_store


def test_rolls_by_size_and_publishes_atomically(tmp_path, readings):
    published = []
    store = JsonLinesColdStore(
        tmp_path, roll_bytes=20_000, roll_s=3600, on_publish=lambda path, n, at: published.append((path.name, n))
    )
    for i in range(0, len(readings), 10):
        store.append(readings[i : i + 10], 1_700_000_000.5)
        assert not list(tmp_path.glob("part-*.tmp"))  # only whole files carry the public name
    store.close()
    assert len(published) >= 3 and sum(n for _, n in published) == len(readings)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(name for name, _ in published)
    records = read_jsonl_store(tmp_path)
    assert [(r["device_id"], r["seq"]) for r in records] == [(r.device_id, r.seq) for r in readings]


def test_rolls_by_time(tmp_path, readings):
    store = JsonLinesColdStore(tmp_path, roll_bytes=1 << 30, roll_s=1.0)
    store.append(readings[:5], 100.0)
    store.roll_if_due(100.5)
    store.wait()
    assert store.files == 0
    store.roll_if_due(101.0)
    store.wait()
    assert store.files == 1 and store.events == 5
    assert [p.name for p in tmp_path.iterdir()] == ["part-00000.jsonl.gz"]


def test_records_are_readable_with_standard_tools(tmp_path, readings):
    store = JsonLinesColdStore(tmp_path)
    store.append(readings[:3], 1_700_000_000.25)
    store.close()
    text = subprocess.run(
        ["gzip", "-dc", str(tmp_path / "part-00000.jsonl.gz")], capture_output=True, check=True, timeout=10
    ).stdout.decode()
    first = json.loads(text.splitlines()[0])
    assert first["device_id"] == readings[0].device_id and first["seq"] == readings[0].seq
    assert first["observed_at"].startswith(readings[0].observed_at.isoformat()[:19])
    assert first["temperature_c"] == readings[0].temperature_c
    assert first["stored_at"] == "2023-11-14T22:13:20.250000+00:00"


def test_each_record_is_the_reading_then_its_own_stored_at(tmp_path, readings):
    # records of several appends are encoded together; each keeps the time of its own append, and
    # the line is the reading's JSON with stored_at last, as `"}\n" -> ',"stored_at":...}\n'` made it
    store = JsonLinesColdStore(tmp_path, roll_s=3600)
    times = [1_700_000_000.0, 1_700_000_000.0000004, 1_700_000_000.9999996, 1_700_000_001.5, 1_700_000_001.123456]
    for i, t in enumerate(times):
        store.append(readings[2 * i : 2 * i + 2], t)
    store.close()
    text = subprocess.run(
        ["gzip", "-dc", str(tmp_path / "part-00000.jsonl.gz")], capture_output=True, check=True, timeout=10
    ).stdout
    expected = b"".join(
        msgspec.json.encode(r)[:-1] + b',"stored_at":"' + datetime.fromtimestamp(t, UTC).isoformat().encode() + b'"}\n'
        for i, t in enumerate(times)
        for r in readings[2 * i : 2 * i + 2]
    )
    assert text == expected
