"""A sending side of N processes (spec key ``sending_processes``): each takes a share of the
devices and connections, and the runner merges their ledgers and histograms exactly."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from pathlib import Path

import msgspec
import pytest

from iotbench.model.spec import SpecError, parse_spec
from iotbench.pipeline.accounting import SeqLedger
from iotbench.pipeline.coldstore import read_jsonl_store
from iotbench.pipeline.metrics import Latency
from iotbench.pipeline.runner import run_cell
from iotbench.transports import TRANSPORTS
from iotbench.transports.base import TransportError
from iotbench.transports.inprocess import InProcessTransport


def _sent_pairs(folder: Path) -> set[tuple[str, int]]:
    with gzip.open(folder / "sent-ledger.json.gz", "rt") as fh:
        return SeqLedger.from_ranges(json.load(fh)).pairs()


def _fate(device_id: str, seq: int) -> str:
    """What the keyed lossy broker does with one reading: the same in every process."""
    n = zlib.crc32(f"{device_id}:{seq}".encode()) % 20
    return {0: "refused", 1: "unacknowledged", 2: "dropped", 3: "doubled"}.get(n, "stored")


class KeyedLossyTransport(InProcessTransport):
    """Drops, doubles and fails readings by a hash of (device, seq): its choices do not depend on
    which process sends a reading or in what order, so a test can tell what must come out."""

    name = "keyed-lossy"

    async def open_sender(self, index: int):
        inner = await super().open_sender(index)

        class Sender:
            async def send(self, key: str, payload: bytes) -> None:
                reading = msgspec.json.decode(payload)
                fate = _fate(reading["device_id"], reading["seq"])
                if fate == "refused":
                    raise TransportError("broker said no")
                if fate == "dropped":
                    return
                await inner.send(key, payload)
                if fate == "unacknowledged":
                    raise TransportError("acknowledgement lost")
                if fate == "doubled":
                    await inner.send(key, payload)

            async def close(self) -> None:
                await inner.close()

        return Sender()


@pytest.fixture
def keyed_lossy():
    TRANSPORTS.register("keyed-lossy", "test_sending_processes:KeyedLossyTransport")
    yield
    TRANSPORTS.unregister("keyed-lossy")


def _spec(transport: str, processes: int, **more) -> object:
    return parse_spec(
        {
            "codecs": ["json"],
            "transports": [transport],
            "batch": [1],
            "devices": 300,
            "connections": 3,
            "interval_s": 0.5,
            "duration_s": 2,
            "warmup_s": 0,
            "drain_timeout_s": 2,
            "sending_processes": processes,
            **more,
        }
    )


def test_three_sending_processes_share_the_devices_and_merge_exactly(tmp_path):
    spec = _spec("inprocess", 3)
    result = asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell"))
    assert result.status == "ok", result.error
    assert result.events_lost == result.events_duplicated == result.events_failed == 0
    assert result.events_stored == result.events_sent == result.events_acked == result.events_scheduled
    assert 300 * 2 * 2 * 0.9 <= result.events_sent <= 300 * 2 * 2 * 1.1  # 600 events/s for 2 s
    stored = [(r["device_id"], r["seq"]) for r in read_jsonl_store(tmp_path / "cell" / "cold-store")]
    assert set(stored) == _sent_pairs(tmp_path / "cell") and len(stored) == result.events_stored
    devices = {d for d, _ in stored}
    assert len(devices) == 300  # every device of the fleet, whichever process it was in
    # the merged histograms hold every process's sends
    assert Latency.decode(result.histograms["send_delay"]).count == result.sends == result.events_sent
    assert result.throughput_eps == pytest.approx(600, rel=0.1)


def test_losses_duplicates_and_failed_sends_are_counted_exactly_across_processes(tmp_path, keyed_lossy):
    spec = _spec("keyed-lossy", 2)
    folder = tmp_path / "cell"
    result = asyncio.run(run_cell(spec, spec.cells()[0], folder))
    sent = _sent_pairs(folder)
    assert len(sent) == result.events_sent
    fates: dict[str, int] = {}
    for device_id, seq in sent:
        fate = _fate(device_id, seq)
        fates[fate] = fates.get(fate, 0) + 1
    refused, unacknowledged = fates.get("refused", 0), fates.get("unacknowledged", 0)
    dropped, doubled = fates.get("dropped", 0), fates.get("doubled", 0)
    assert refused and unacknowledged and dropped and doubled
    assert result.events_failed == refused + unacknowledged
    assert result.events_acked == result.events_sent - refused - unacknowledged
    assert result.events_failed_stored == unacknowledged
    assert result.events_lost == dropped + refused
    assert result.events_duplicated == doubled
    assert result.events_stored == result.events_sent - dropped - refused
    assert Latency.decode(result.histograms["publish_failed"]).count == refused + unacknowledged
    # both processes' dead letters, in the cell's one file
    dead = [json.loads(line) for line in (folder / "dead-letter.jsonl").read_text().splitlines()]
    failed = {(d, s) for d, s in sent if _fate(d, s) in ("refused", "unacknowledged")}
    assert {tuple(e) for d in dead for e in d["events"]} == failed and len(dead) == len(failed)
    assert not list(folder.glob("dead-letter.sending-*.jsonl"))


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"sending_processes": 4, "connections": 2}, "4 processes for 2 connections"),
        ({"sending_processes": 0}, "zero"),
        ({"sending_cpus": [9999]}, "CPU 9,999 is not one this process may use"),
        ({"sending_cpus": [0, 0]}, "names a CPU twice"),
    ],
)
def test_bad_sending_keys_are_named(raw, words):
    with pytest.raises(SpecError, match="sending_") as error:
        parse_spec({"codecs": ["json"], "transports": ["inprocess"], **raw})
    assert words in str(error.value)
