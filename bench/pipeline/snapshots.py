"""What each side of a cell knows when it ends: plain, frozen records the runner reads results from.

The sending side (fleet + publisher) and the receiving side (consumer) each hand the runner one
snapshot instead of the runner reading their attributes; every field is data that merges exactly
(counts add, ledgers and HdrHistograms merge), so a side can run in another process or on another
machine and send its snapshot back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from iotbench.model.telemetry import MAX_SEQ
from iotbench.pipeline.accounting import SeqLedger
from iotbench.pipeline.metrics import Latency
from iotbench.pipeline.series import merge_series
from iotbench.pipeline.usage import Reading

__all__ = ["ReceiveSide", "SendSide", "ledger_from_wire", "ledger_to_wire", "merge_sends", "merge_usage"]

Wire = dict[str, Any]  # what crosses a process boundary: plain types, pickled by multiprocessing


def ledger_to_wire(ledger: SeqLedger) -> dict[str, bytes]:
    """A ledger as device -> its marks (one byte per seq), as compact as it is in memory."""
    return {device: bytes(marks) for device, marks in ledger.devices().items()}


def ledger_from_wire(wire: dict[str, bytes], max_seq: int = MAX_SEQ) -> SeqLedger:
    return SeqLedger.from_marks({device: bytearray(marks) for device, marks in wire.items()}, max_seq)


def _latencies_to_wire(latency: dict[str, Latency]) -> dict[str, tuple[str, int]]:
    return {name: (h.encoded(), h.clipped_count) for name, h in latency.items()}


def _latencies_from_wire(wire: dict[str, tuple[str, int]]) -> dict[str, Latency]:
    out = {}
    for name, (encoded, clipped) in wire.items():
        h = Latency.decode(encoded)
        h.clipped = clipped
        out[name] = h
    return out


@dataclass(frozen=True)
class SendSide:
    """The fleet's schedule and the publisher's counts, sizes, latencies and ledgers."""

    scheduled: int  # readings the fleet generated (warm-up included)
    events_sent: int
    events_acked: int
    events_failed: int
    sends: int
    latency: dict[str, Latency]  # send_delay, publish, publish_failed
    payload_bytes: dict[str, float | None]  # per event: mean, min, max
    send_bytes: dict[str, float | None]  # per send
    sent: SeqLedger = field(repr=False)
    failed: SeqLedger = field(repr=False)  # events of sends that raised or timed out
    dead_letters: int = 0  # failed sends written to the sending side's dead-letter file
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    # this process's readings (iotbench.pipeline.usage) when its connections had opened, at the window's
    # start and end, before and after closing; its peak RSS: merge_usage adds processes
    usage: dict[str, Any] = field(default_factory=dict)
    series: Wire = field(default_factory=dict, repr=False)  # per-second bins (series.SendSeries), sparse

    def to_wire(self) -> Wire:
        return {
            **asdict(replace(self, sent=SeqLedger(), failed=SeqLedger(), latency={})),
            "sent": ledger_to_wire(self.sent),
            "failed": ledger_to_wire(self.failed),
            "latency": _latencies_to_wire(self.latency),
        }

    @classmethod
    def from_wire(cls, wire: Wire) -> SendSide:
        return cls(
            **{
                **wire,
                "sent": ledger_from_wire(wire["sent"]),
                "failed": ledger_from_wire(wire["failed"]),
                "latency": _latencies_from_wire(wire["latency"]),
            }
        )


@dataclass(frozen=True)
class ReceiveSide:
    """The consumer's ledger, counts, latencies and dead letters."""

    ledger: SeqLedger = field(repr=False)  # (device, seq) -> copies stored
    events_rejected: int
    events_late: int  # stored only after the drain gave up
    throughput_eps: float  # distinct readings meant for the measured window, stored, per second of it
    latency: dict[str, Latency]  # e2e_received, e2e_stored
    dead_letters: int
    dead_letter_reasons: dict[str, int]
    usage: dict[str, Any] = field(default_factory=dict)  # readings at the window's edges, peak RSS
    series: Wire = field(default_factory=dict, repr=False)  # per-second bins (series.ReceiveSeries), sparse

    def to_wire(self) -> Wire:
        return {
            **asdict(replace(self, ledger=SeqLedger(), latency={})),
            "ledger": ledger_to_wire(self.ledger),
            "latency": _latencies_to_wire(self.latency),
        }

    @classmethod
    def from_wire(cls, wire: Wire) -> ReceiveSide:
        return cls(
            **{**wire, "ledger": ledger_from_wire(wire["ledger"]), "latency": _latencies_from_wire(wire["latency"])}
        )


def _merge_sizes(parts: list[tuple[dict[str, float | None], int]]) -> dict[str, float | None]:
    """Mean/min/max of several sides' sizes, the means weighted by what each side sent."""
    known = [({k: float(v or 0.0) for k, v in s.items()}, n) for s, n in parts if n and s.get("mean") is not None]
    if not known:
        return {"mean": None, "min": None, "max": None}
    total = sum(n for _, n in known)
    return {
        "mean": round(sum(s["mean"] * n for s, n in known) / total, 2),
        "min": min(s["min"] for s, _ in known),
        "max": max(s["max"] for s, _ in known),
    }


def merge_sends(sides: list[SendSide]) -> SendSide:
    """The sending side of a cell from its processes' snapshots: counts add, ledgers and histograms merge."""
    if len(sides) == 1:
        return sides[0]
    sent, failed = SeqLedger(), SeqLedger()
    latency: dict[str, Latency] = {}
    reasons: dict[str, int] = {}
    for side in sides:
        sent.merge(side.sent)
        failed.merge(side.failed)
        for name, h in side.latency.items():
            latency.setdefault(name, Latency()).merge(h)
        for reason, n in side.dead_letter_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
    return SendSide(
        scheduled=sum(s.scheduled for s in sides),
        events_sent=sum(s.events_sent for s in sides),
        events_acked=sum(s.events_acked for s in sides),
        events_failed=sum(s.events_failed for s in sides),
        sends=sum(s.sends for s in sides),
        latency=latency,
        payload_bytes=_merge_sizes([(s.payload_bytes, s.events_sent) for s in sides]),
        send_bytes=_merge_sizes([(s.send_bytes, s.sends) for s in sides]),
        sent=sent,
        failed=failed,
        dead_letters=sum(s.dead_letters for s in sides),
        dead_letter_reasons=reasons,
        usage=merge_usage([s.usage for s in sides]),
        series=merge_series([s.series for s in sides]),
    )


def merge_usage(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several processes' usage records as one: every reading and the peaks add."""
    parts = [p for p in parts if p]
    if not parts:
        return {}
    out: dict[str, Any] = {}
    for name in parts[0]:
        if name == "peak_rss_mb":
            out[name] = sum(p[name] for p in parts)
        else:
            total = Reading()
            for p in parts:
                total = total.plus(Reading.from_dict(p[name]))
            out[name] = total.to_dict()
    return out
