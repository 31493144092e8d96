"""The highest offered rate a cell sustains over a fixed ladder of fleet rates (the studies' search).

The search itself is ``iotbench.pipeline.ramp.climb``, the one a spec's ``rate = "max"`` uses too;
here a rate is a fleet of ``rate`` devices reporting once a second, as the README's tables were
measured. A rate is sustained when the cell kept up by the one rule the decision and the CLI use
(``iotbench.model.sustain``): at least 95 % of the offered events per second stored over the
measured window, nothing lost, and the send delay p99 within its bound -- so a harness that falls
behind its own schedule (coordinated omission) never counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from pathlib import Path

from iotbench.model.results import CellResult
from iotbench.model.spec import Cell, Spec
from iotbench.model.sustain import kept_up
from iotbench.pipeline.ramp import climb
from iotbench.pipeline.runner import run_cell

__all__ = ["sustained", "search_rate"]


def sustained(result: CellResult) -> bool:
    """The shared rule (iotbench.model.sustain): stored >= 95 % of offered, nothing lost, send delay p99 in bounds."""
    return kept_up(result.to_dict())


def search_rate(
    spec: Spec, cell: Cell, rates_eps: Iterable[float], folder: Path
) -> tuple[float | None, list[CellResult]]:
    """Run ``cell`` at each offered rate (ascending; 1 s interval, devices = rate) until one
    is not sustained; returns (highest sustained rate or None, every result)."""

    def trial(rate: float) -> CellResult:
        at_rate = dataclasses.replace(cell, devices=int(rate), interval_s=1.0)
        return asyncio.run(run_cell(spec, at_rate, folder / f"rate-{int(rate)}"))

    return climb(trial, rates_eps)
