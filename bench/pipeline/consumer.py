"""The consumer: payload -> decompress -> decode -> validate -> cold store.

It is what the cloud side of Fabrikam's pipeline does, run by the harness. It
counts, per (device, seq), what it stored, keeps what it could not use in the
dead-letter file, and advances its checkpoint only after the cold store has made
a file durable.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from iotbench.codecs.base import CodecError
from iotbench.compression import Compression
from iotbench.model.telemetry import MAX_SEQ, validate
from iotbench.pipeline.accounting import SeqLedger, StoreLedger
from iotbench.pipeline.coldstore import JsonLinesColdStore
from iotbench.pipeline.deadletter import DeadLetter
from iotbench.pipeline.metrics import Latency
from iotbench.pipeline.series import ReceiveSeries
from iotbench.pipeline.snapshots import ReceiveSide

__all__ = ["Consumer", "Window"]


@dataclass
class Window:
    """The measured part of a run, in wall-clock seconds (after warm-up)."""

    start: float = float("inf")
    end: float = float("inf")


class Consumer:
    """``consumer.deliver(payload)`` for every payload the receiver gets.

    ``batched`` says how the sender framed payloads (one reading, or a batch).
    """

    def __init__(
        self,
        codec: Any,
        compression: Compression,
        store: JsonLinesColdStore,
        dead_letter: DeadLetter,
        *,
        batched: bool,
        window: Window,
        checkpoint_path: Path,
        max_seq: int = MAX_SEQ,
        devices: int = 0,
    ) -> None:
        self._decode = codec.decode_batch if batched else (lambda p: [codec.decode(p)])
        self._decompress = compression.decompress
        self.store = store
        self.dead_letter = dead_letter
        self.window = window
        self.checkpoint_path = Path(checkpoint_path)
        # what a device can have sent in this cell bounds what a reading may claim: the ledgers
        # allocate per seq, so a forged seq must be rejected before it reaches them
        self.max_seq = max_seq
        # (device, seq) of what was stored; ``devices`` (the cell's) sizes its table
        self._stored = StoreLedger(max_seq, devices)
        self.series = ReceiveSeries(window)  # per second: fed the readings the ledger gets, in its order
        self._stored.on_count = self.series.stored
        self._distinct_when_late: int | None = None  # set when the drain gives up (count_late)
        self.e2e_received = Latency()
        self.e2e_stored = Latency()
        self.payloads = 0
        self.events_received = 0
        self.events_rejected = 0
        self.payloads_rejected = 0
        self.events_appended = 0
        self._unpublished: list[float] = []  # observed times of measured events in the open file
        self._sealed: deque[list[float]] = deque()  # the same, for files being made durable
        # receivers (transports.base.Receiver.mark/durable; Event Hubs' checkpoint store): a broker-side
        # checkpoint moves only once the cold store has made what they delivered durable
        self.checkpointers: list[Any] = []
        self._marks: deque[list[Any]] = deque()
        store.on_seal = self._seal
        store.on_publish = self._published

    def deliver(self, payload: bytes) -> None:
        now = time.time()
        self.payloads += 1
        try:
            readings = self._decode(self._decompress(payload))
        except CodecError as exc:
            self.payloads_rejected += 1
            self.events_rejected += 1  # one payload we cannot open counts as one event
            self.dead_letter.payload(payload, str(exc))
            return
        self.events_received += len(readings)
        max_seq = self.max_seq
        good = [r for r in readings if validate(r) is None and r.seq <= max_seq]
        if len(good) < len(readings):
            for reading in readings:
                reason = validate(reading)
                if reason is None and reading.seq > max_seq:
                    reason = f"seq {reading.seq} is above {max_seq}, more than a device sends in this cell"
                if reason is not None:
                    self.events_rejected += 1
                    self.dead_letter.reading(reading, reason)
        if not good:
            return
        # per payload, not per event: one list of observed times feeds the latencies and the window
        observed = [r.observed_at.timestamp() for r in good]
        self.series.received(now, observed)
        start, end = self.window.start, self.window.end
        if start <= min(observed) and max(observed) < end:  # the usual payload: all of it in the window
            inside = [True] * len(good)
        else:
            inside = [start <= o < end for o in observed]
            observed = [o for o, i in zip(observed, inside) if i]
        # A (device, seq) carries the same intended time in every copy, so the window's distinct
        # readings are those first seen with a time in it: one ledger, not a second one for the window
        self._stored.add([r.device_id for r in good], [r.seq for r in good], inside)
        self.e2e_received.record_since(now, observed)
        self._unpublished.extend(observed)
        self.events_appended += len(good)
        self.store.append(good, now)

    @property
    def ledger(self) -> SeqLedger:
        """(device, seq) of every reading stored, with its copies."""
        return self._stored.ledger()

    @property
    def distinct(self) -> int:
        """(device, seq) pairs stored at least once."""
        return self._stored.distinct

    def count_late(self) -> None:
        """The drain gave up: what is stored from now on is late (counted apart from lost)."""
        self._distinct_when_late = self._stored.distinct

    @property
    def events_late(self) -> int:
        if self._distinct_when_late is None:
            return 0
        return self._stored.distinct - self._distinct_when_late

    def throughput_eps(self) -> float:
        """Distinct readings meant to be sent in the measured window and stored, per second of it."""
        return self._stored.window_distinct / (self.window.end - self.window.start)

    def snapshot(self) -> ReceiveSide:
        """The receiving side's figures; call after ``close`` (the cold store has published all)."""
        ledger = self.ledger  # counts what is pending, the series' bins with it
        return ReceiveSide(
            ledger=ledger,
            events_rejected=self.events_rejected,
            events_late=self.events_late,
            throughput_eps=self.throughput_eps(),
            latency={"e2e_received": self.e2e_received, "e2e_stored": self.e2e_stored},
            dead_letters=self.dead_letter.count,
            dead_letter_reasons=dict(self.dead_letter.reasons),
            series=self.series.to_wire(),
        )

    def ledger_events(self) -> int:
        """Valid readings handed to the cold store so far (duplicates included)."""
        return self.events_appended

    def tick(self, now: float) -> None:
        """Roll the open file if it is due; the runner calls this a few times a second."""
        self.store.roll_if_due(now)

    def _seal(self) -> None:
        self._sealed.append(self._unpublished)
        self._unpublished = []
        self._marks.append([(c, c.mark()) for c in self.checkpointers])

    def _published(self, path: Path, events: int, published_at: float) -> None:
        self.e2e_stored.record_since(published_at, self._sealed.popleft())
        # the checkpoint only moves once the file is durable
        tmp = self.checkpoint_path.with_suffix(".tmp")
        tmp.write_bytes(
            msgspec.json.encode(
                {"file": path.name, "files": self.store.files, "events": self.store.events, "at": published_at}
            )
        )
        os.replace(tmp, self.checkpoint_path)
        for checkpointer, mark in self._marks.popleft():
            checkpointer.durable(mark)

    def close(self) -> None:
        self.store.close()
        self.dead_letter.close()
