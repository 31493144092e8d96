"""The result record: one frozen, versioned object per cell run, one JSON line each.

This is the output contract the report, the notebooks and users' scripts read.
Change it only by adding keys; a change of meaning bumps ``SCHEMA_VERSION``.

Format history:
  1 -- first version (issue 2): counts, latency_ms, payload_bytes, cold_store.
  1 -- added transport_counters (issue 5): what only the transport sees, e.g. events_throttled,
       retries, connections_refused; {} for transports that expose none.
  1 -- added events_failed_stored: events of failed sends that were stored all the same (a
       timed-out or unacknowledged send that arrived); 0 in records written before.
  1 -- (issue 16) added events_late (stored only after the drain gave up: not lost, not in time),
       latency_clipped (values recorded at 1 us or 1 h instead of their own, per histogram; {} when
       none), the publish_failed histogram (send -> failure of failed sends), run_id (the prefix of
       the run's device ids). throughput_eps now counts distinct readings meant to be sent in the
       measured window (it counted arrivals in the window, warm-up readings included).
  1 -- (issue 11) added wire (bytes per event on the sending side's connections, from the kernel's
       TCP counters: up/down by layer, connection set-up and tear-down; null without a TCP
       connection), cpu_us_per_event and peak_rss_mb (client, server, consumer).
  1 -- (issue 11) added search: None, or for a trial of a rate search (spec ``rate = "max"``) its
       ``id``, ``cell`` and ``step``; the search's last trial also holds its ``outcome``.
  1 -- (issue 11) added timeseries: the cell bin by bin (1 s; wider past 600 s of window) from the
       schedule's start, warm-up included and the window marked -- events sent, failed and stored,
       send delay, publish and end-to-end (received) p50/p99 (iotbench.pipeline.series); {} in
       records written before and for a cell that sent nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_VERSION", "CellResult", "append_result", "read_results"]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class CellResult:
    cell: str
    codec: str
    transport: str
    transport_options: dict[str, Any]
    batch: int
    compression: str
    connections: int
    devices: int
    interval_s: float
    duration_s: float
    warmup_s: float
    repeat: int
    target_eps: float
    status: str  # "ok", or "failed" with ``error`` saying why
    events_scheduled: int
    events_sent: int
    events_acked: int
    events_failed: int  # sends that raised or timed out (their events are in the dead-letter file)
    events_stored: int
    events_lost: int
    events_duplicated: int
    events_rejected: int
    events_unexpected: int  # stored but never sent (a malformed or replaying device)
    sends: int
    throughput_eps: float
    latency_ms: dict[str, dict[str, float | None]]
    payload_bytes: dict[str, float | None]
    send_bytes: dict[str, float | None]
    cold_store: str
    dead_letter: str | None
    started_at: str
    elapsed_s: float
    error: str | None = None
    error_samples: dict[str, int] = field(default_factory=dict)
    histograms: dict[str, str] = field(default_factory=dict)  # HdrHistogram, base64: merge exactly
    transport_counters: dict[str, int] = field(default_factory=dict)  # from ``transport.counters()``, if it has one
    events_failed_stored: int = 0  # of events_failed: stored all the same (the ack, not the event, was lost)
    events_late: int = 0  # stored only after the drain gave up waiting (kept apart from lost)
    latency_clipped: dict[str, int] = field(default_factory=dict)  # per histogram: values recorded at a bound
    run_id: str = ""  # the run's device-id prefix
    wire: dict[str, Any] | None = None  # bytes per event on the device link by layer, measured (None: no TCP)
    cpu_us_per_event: dict[str, Any] = field(default_factory=dict)  # client, server, consumer
    peak_rss_mb: dict[str, Any] = field(default_factory=dict)  # client, server, consumer
    search: dict[str, Any] | None = None  # a rate search's trial: id, cell, step (+ outcome on its last)
    timeseries: dict[str, Any] = field(default_factory=dict)  # per second (bin_s): rates and percentiles
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def append_result(path: Path, result: CellResult) -> None:
    """Append one line and flush it: a crash later in the matrix keeps earlier cells."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(result.to_dict(), sort_keys=True) + "\n")


def read_results(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
