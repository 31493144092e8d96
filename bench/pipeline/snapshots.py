"""What each side of a cell knows when it ends: plain, frozen records the runner reads results from.

The sending side (fleet + publisher) and the receiving side (consumer) each hand the runner one
snapshot instead of the runner reading their attributes; every field is data that merges exactly
(counts add, ledgers and HdrHistograms merge), so a side can run in another process or on another
machine and send its snapshot back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from iotbench.pipeline.accounting import SeqLedger
from iotbench.pipeline.metrics import Latency

__all__ = ["ReceiveSide", "SendSide"]


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
