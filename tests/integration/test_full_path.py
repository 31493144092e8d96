"""The whole path in process: fleet -> encode -> transport -> decode -> cold store, exactly accounted."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import pytest

from iotbench.cli import main
from iotbench.model.spec import parse_spec
from iotbench.pipeline.accounting import SeqLedger
from iotbench.pipeline.coldstore import read_jsonl_store
from iotbench.pipeline.metrics import Latency
from iotbench.pipeline.runner import run_cell
from iotbench.transports import TRANSPORTS
from iotbench.transports.base import TransportError
from iotbench.transports.inprocess import InProcessTransport

REQUIRED_KEYS = {
    "schema_version",
    "cell",
    "codec",
    "transport",
    "batch",
    "compression",
    "devices",
    "interval_s",
    "duration_s",
    "target_eps",
    "events_scheduled",
    "events_sent",
    "events_acked",
    "events_stored",
    "events_lost",
    "events_duplicated",
    "events_rejected",
    "throughput_eps",
    "latency_ms",
    "payload_bytes",
    "cold_store",
    "started_at",
}


def _stored_pairs(out: Path, result: dict) -> list[tuple[str, int]]:
    return [(r["device_id"], r["seq"]) for r in read_jsonl_store(out / result["cold_store"])]


def _sent_pairs(out: Path, result: dict) -> set[tuple[str, int]]:
    ledger_path = out / Path(result["cold_store"]).parent / "sent-ledger.json.gz"
    with gzip.open(ledger_path, "rt") as fh:
        return SeqLedger.from_ranges(json.load(fh)).pairs()


@pytest.mark.slow
def test_two_codecs_5000_devices_at_1s_for_8s_lose_nothing(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'codecs = ["json", "msgpack"]\ntransports = ["inprocess"]\nbatch = [100]\n'
        "devices = 5000\ninterval_s = 1\nduration_s = 8\nwarmup_s = 2\n"
    )
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--no-report"]) == 0
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["codec"] for r in results] == ["json", "msgpack"]
    for r in results:
        assert REQUIRED_KEYS <= r.keys()
        assert r["status"] == "ok" and r["schema_version"] == 1
        assert r["events_lost"] == 0 and r["events_duplicated"] == 0 and r["events_rejected"] == 0
        assert r["events_stored"] == r["events_sent"] == r["events_acked"] == r["events_scheduled"]
        assert 5000 * 9 <= r["events_sent"] <= 5000 * 11  # 10 s of 5,000 events/s, +-jitter at the edges
        stored = _stored_pairs(out, r)
        assert len(stored) == len(set(stored)) == r["events_stored"]
        assert set(stored) == _sent_pairs(out, r)  # exactly the (device, seq) pairs that were sent
        assert r["throughput_eps"] == pytest.approx(5000, rel=0.05)
        for metric in ("send_delay", "publish", "e2e_received", "e2e_stored"):
            assert set(r["latency_ms"][metric]) == {"p50", "p90", "p99", "p999", "max"}
            assert r["latency_ms"][metric]["p50"] <= r["latency_ms"][metric]["p99"] <= r["latency_ms"][metric]["max"]
        assert r["latency_ms"]["e2e_stored"]["p50"] >= r["latency_ms"]["e2e_received"]["p50"]
        assert r["payload_bytes"]["min"] <= r["payload_bytes"]["mean"] <= r["payload_bytes"]["max"]
    assert results[1]["payload_bytes"]["mean"] < results[0]["payload_bytes"]["mean"]  # msgpack is smaller
    run = json.loads((out / "run.json").read_text())
    assert run["spec"]["devices"] == [5000] and run["machine"]["cores"] and "msgspec" in run["libraries"]


class LossyTransport(InProcessTransport):
    """A broker that acknowledges and drops every 5th payload, stores every 7th twice, fails every 11th,
    and stores every 13th but fails its send (the acknowledgement is lost)."""

    name = "lossy"

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.dropped: list[bytes] = []
        self.failed = 0

    async def open_sender(self, index: int):
        inner = await super().open_sender(index)
        transport = self

        class Sender:
            count = 0

            async def send(self, key: str, payload: bytes) -> None:
                Sender.count += 1
                if Sender.count % 11 == 0:
                    transport.failed += 1
                    raise TransportError("broker said no")
                if Sender.count % 13 == 0:
                    await inner.send(key, payload)
                    raise TransportError("acknowledgement lost")
                if Sender.count % 5 == 0:
                    transport.dropped.append(payload)
                    return
                await inner.send(key, payload)
                if Sender.count % 7 == 0:
                    await inner.send(key, payload)

            async def close(self) -> None:
                await inner.close()

        return Sender()


@pytest.fixture
def lossy():
    TRANSPORTS.register("lossy", "test_full_path:LossyTransport")
    yield
    TRANSPORTS.unregister("lossy")


def test_losses_duplicates_and_failed_sends_are_counted_exactly(tmp_path, lossy):
    spec = parse_spec(
        {
            "codecs": ["json"],
            "transports": ["lossy"],
            "batch": [1],
            "devices": 200,
            "interval_s": 0.5,
            "duration_s": 2,
            "warmup_s": 0,
            "drain_timeout_s": 2,
        }
    )
    result = asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell"))
    sent = result.events_sent
    refused, unacknowledged, dropped, doubled = 0, 0, 0, 0
    for n in range(1, sent + 1):
        if n % 11 == 0:
            refused += 1
        elif n % 13 == 0:
            unacknowledged += 1
        elif n % 5 == 0:
            dropped += 1
        elif n % 7 == 0:
            doubled += 1
    failed = refused + unacknowledged
    assert refused and unacknowledged and dropped and doubled
    assert result.events_failed == failed and result.events_acked == sent - failed
    assert result.events_failed_stored == unacknowledged  # failed at the sender, stored all the same
    # the failed sends' own latency is kept (send -> failure), not dropped
    assert Latency.decode(result.histograms["publish_failed"]).count == refused + unacknowledged
    assert result.events_lost == dropped + refused
    assert result.events_duplicated == doubled
    assert result.events_stored == sent - dropped - refused
    dead = [json.loads(line) for line in (tmp_path / "cell" / "dead-letter.jsonl").read_text().splitlines()]
    assert len(dead) == failed
    assert sum("broker said no" in d["reason"] for d in dead) == refused
    assert sum("acknowledgement lost" in d["reason"] for d in dead) == unacknowledged
