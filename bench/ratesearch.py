"""The highest offered rate a cell sustains: a step search over fleet rates.

A rate is sustained when the consumer stored at least 95 % of the offered events
per second over the measured window, nothing was lost, and the send delay p99
stayed under ``max_send_delay_ms`` -- so a harness that falls behind its own
schedule (coordinated omission) never counts as keeping up.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Iterable

from iotbench.results import CellResult
from iotbench.runner import run_cell
from iotbench.spec import Cell, Spec

__all__ = ["sustained", "search_rate"]


def sustained(result: CellResult, max_send_delay_ms: float = 100.0) -> bool:
    delay = result.latency_ms["send_delay"].get("p99")
    return (
        result.status == "ok"
        and result.events_lost == 0
        and result.throughput_eps >= 0.95 * result.target_eps
        and delay is not None
        and delay <= max_send_delay_ms
    )


def search_rate(spec: Spec, cell: Cell, rates_eps: Iterable[float], folder: Path,
                max_send_delay_ms: float = 100.0) -> tuple[float | None, list[CellResult]]:
    """Run ``cell`` at each offered rate (ascending; 1 s interval, devices = rate) until one
    is not sustained; returns (highest sustained rate or None, every result)."""
    best, results = None, []
    for rate in sorted(rates_eps):
        trial = dataclasses.replace(cell, devices=int(rate), interval_s=1.0)
        result = asyncio.run(run_cell(spec, trial, folder / f"rate-{int(rate)}"))
        results.append(result)
        if not sustained(result, max_send_delay_ms):
            break
        best = rate
    return best, results
