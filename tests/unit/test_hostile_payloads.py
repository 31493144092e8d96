"""Hostile readings cannot kill the consumer: validation bounds every field, the ledger allocates
nothing from what a payload claims."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import msgspec
import pytest

from iotbench.codecs import get_codec
from iotbench.compression import get_compression
from iotbench.model.telemetry import MAX_SEQ
from iotbench.pipeline.accounting import SeqLedger
from iotbench.pipeline.coldstore import JsonLinesColdStore
from iotbench.pipeline.consumer import Consumer, Window
from iotbench.pipeline.deadletter import DeadLetter


def _consumer(tmp_path, max_seq=MAX_SEQ):
    return Consumer(
        get_codec("json"),
        get_compression("none"),
        JsonLinesColdStore(tmp_path / "store", roll_s=3600),
        DeadLetter(tmp_path / "dead.jsonl"),
        batched=True,
        window=Window(start=0.0, end=1e12),
        checkpoint_path=tmp_path / "checkpoint.json",
        max_seq=max_seq,
    )


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"seq": 10**12}, "seq 1000000000000 is above"),
        ({"seq": 2**63 - 1}, "seq 9223372036854775807 is above"),
        ({"observed_at": datetime(1, 1, 1, tzinfo=UTC)}, "observed_at 0001-01-01"),
        ({"observed_at": datetime(9999, 1, 1, tzinfo=UTC)}, "observed_at 9999-01-01"),
        ({"schema_version": 10**9}, "schema_version 1000000000 outside"),
        ({"temperature_c": 1e308}, "temperature_c 1e+308 outside"),
    ],
)
def test_a_forged_field_is_rejected_without_allocating(tmp_path, readings, changes, reason):
    consumer = _consumer(tmp_path)
    forged = msgspec.structs.replace(readings[0], **changes)
    payload = get_codec("json").encode_batch([forged, readings[1]])
    tracemalloc.start()
    consumer.deliver(payload)  # a MemoryError here would kill the receiver, and the cell with it
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    consumer.close()
    assert peak < 2_000_000, f"delivering one payload allocated {peak:,} bytes"
    assert consumer.events_rejected == 1 and consumer.ledger.total() == 1
    assert reason in (tmp_path / "dead.jsonl").read_text()


def test_the_cell_bound_on_seq_rejects_what_no_device_of_the_cell_could_send(tmp_path, readings):
    consumer = _consumer(tmp_path, max_seq=5)
    consumer.deliver(get_codec("json").encode_batch([msgspec.structs.replace(readings[0], seq=6), readings[1]]))
    consumer.close()
    assert consumer.events_rejected == 1
    assert "more than a device sends in this cell" in (tmp_path / "dead.jsonl").read_text()


def test_the_ledger_refuses_a_seq_beyond_its_bound():
    ledger = SeqLedger(max_seq=100)
    ledger.add("d", 100)
    with pytest.raises(ValueError, match="outside 0..100"):
        ledger.add("d", 101)
    with pytest.raises(ValueError):
        SeqLedger().add("d", 10**12)
