"""The consumer keeps what it cannot use, with the reason, and checkpoints after durability."""

from __future__ import annotations

import json
import time

import msgspec

from iotbench.codecs import get_codec
from iotbench.compression import get_compression
from iotbench.pipeline.coldstore import JsonLinesColdStore
from iotbench.pipeline.consumer import Consumer, Window
from iotbench.pipeline.deadletter import DeadLetter


def _consumer(tmp_path, batched=True):
    return Consumer(
        get_codec("json"),
        get_compression("none"),
        JsonLinesColdStore(tmp_path / "store", roll_s=3600),
        DeadLetter(tmp_path / "dead.jsonl"),
        batched=batched,
        window=Window(start=0.0, end=1e12),
        checkpoint_path=tmp_path / "checkpoint.json",
    )


def test_bad_payloads_and_readings_go_to_dead_letter(tmp_path, readings):
    consumer = _consumer(tmp_path)
    codec = get_codec("json")
    consumer.deliver(codec.encode_batch(readings[:10]))
    consumer.deliver(b"\x00garbage")
    bad = msgspec.structs.replace(readings[10], humidity_pct=150.0)
    consumer.deliver(codec.encode_batch([bad, readings[11]]))
    consumer.close()
    assert consumer.events_rejected == 2 and consumer.payloads_rejected == 1
    assert consumer.ledger.total() == 11
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert dead[0]["payload_b64"] and "json" in dead[0]["reason"]
    assert dead[1]["reason"] == "humidity_pct 150.0 outside 0..100" and dead[1]["reading"]["seq"] == bad.seq


def test_checkpoint_only_after_the_file_is_published(tmp_path, readings):
    consumer = _consumer(tmp_path)
    consumer.deliver(get_codec("json").encode_batch(readings[:20]))
    assert not (tmp_path / "checkpoint.json").exists()  # written, not yet durable
    assert consumer.e2e_stored.count == 0
    consumer.tick(time.time() + 7200)  # roll: publish
    consumer.store.wait()
    checkpoint = json.loads((tmp_path / "checkpoint.json").read_text())
    assert checkpoint["events"] == 20 and (tmp_path / "store" / checkpoint["file"]).exists()
    assert consumer.e2e_stored.count == 20 and consumer.e2e_received.count == 20
