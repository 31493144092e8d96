"""One rule for "kept up with the offered rate": the decision, the rate search and the CLI use it.

A cell kept up when it ran, stored at least ``SHARE`` of the offered events per second of
the measured window (readings meant to be sent in the window, iotbench.pipeline.consumer), lost
nothing (and nothing arrived only after the drain), and started its sends on time: send
delay p99 at most ``MAX_SEND_DELAY_P99_MS``. The last clause keeps a harness that falls
behind its own schedule (coordinated omission) from counting as keeping up: its readings
all arrive, just late.

>>> shortfall({"status": "ok", "throughput_eps": 1660.0, "target_eps": 1666.7, "events_lost": 0,
...            "latency_ms": {"send_delay": {"p99": 1.2}}}) is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SHARE", "MAX_SEND_DELAY_P99_MS", "RULE", "shortfall", "kept_up"]

SHARE = 0.95
MAX_SEND_DELAY_P99_MS = 100.0
RULE = (
    f"kept up = ran, stored >= {SHARE:.0%} of the offered events/s over the measured window, "
    f"nothing lost or late, send delay p99 <= {MAX_SEND_DELAY_P99_MS:g} ms"
)


def shortfall(record: Mapping[str, Any]) -> str | None:
    """Why a result record (``CellResult.to_dict()`` or a results.jsonl line) did not keep up, or None."""
    if record.get("status") != "ok":
        return "failed"
    offered = record.get("target_eps") or 0.0
    stored = record.get("throughput_eps") or 0.0
    if offered and stored < SHARE * offered:
        return f"stored {stored:,.0f} of {offered:,.0f} events/s ({stored / offered:.0%})"
    lost, late = record.get("events_lost") or 0, record.get("events_late") or 0
    if lost or late:
        return f"{lost:,} lost" + (f", {late:,} late" if late else "")
    delay = ((record.get("latency_ms") or {}).get("send_delay") or {}).get("p99")
    if delay is None:
        return "no send was measured"
    if delay > MAX_SEND_DELAY_P99_MS:
        return f"send delay p99 {delay:,.0f} ms > {MAX_SEND_DELAY_P99_MS:g} ms (fell behind its schedule)"
    return None


def kept_up(record: Mapping[str, Any]) -> bool:
    return shortfall(record) is None
