"""Traceable numbers: every figure in the decision carries how to recompute it.

A ``Figure`` is a value plus the recipe behind it -- which metric, over which
result rows (cell id and repeat), aggregated how, scaled by what -- and renders
as ``<span class="fig" data-...>1,234.5</span>``. A test (and a sceptical reader
with ``jq``) can redo every number in the decision from results.jsonl alone.
Facts from the outside world (Event Hubs limits) render as ``<span class="fact">``
with their source, so they are never mistaken for measurements.
"""

from __future__ import annotations

import html
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from iotbench.stats import TEST, Comparison

__all__ = [
    "AGGREGATES",
    "OPS",
    "Figure",
    "fact",
    "ingress_units_for",
    "measure",
    "percent_less",
    "throughput_units_for",
    "verdict",
]

AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "median": statistics.median,
    "mean": statistics.fmean,
    "sum": sum,
    "min": min,
    "max": max,
    "count": len,
}


@dataclass(frozen=True)
class Figure:
    value: float
    metric: str = ""
    agg: str = ""
    rows: tuple[tuple[str, int], ...] = ()
    scale: float = 1.0
    digits: int = 1
    op: str = ""  # "" (a measurement) or one of OPS over ``args``
    args: tuple[Figure, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        return f"{self.value:,.{self.digits}f}"

    def recipe(self) -> dict[str, Any]:
        if self.op:
            return {"op": self.op, "args": [a.recipe() for a in self.args], "digits": self.digits}
        return {
            "metric": self.metric,
            "agg": self.agg,
            "rows": [list(r) for r in self.rows],
            "scale": self.scale,
            "digits": self.digits,
        }

    def describe(self) -> str:
        """The recipe in words, for the tooltip: 'median of payload_bytes_mean over 4 cell runs'."""
        if self.op:
            return OPS[self.op] + ": " + "; ".join(a.describe() for a in self.args)
        scaled = f", times {self.scale:g}" if self.scale != 1 else ""
        return f"{self.agg} of {self.metric} over {len(self.rows)} cell run(s) in results.jsonl{scaled}"

    def html(self) -> str:
        recipe = html.escape(json.dumps(self.recipe(), separators=(",", ":")), quote=True)
        title = html.escape(self.describe(), quote=True)
        return f'<span class="fig" title="{title}" data-recipe="{recipe}">{self.text}</span>'

    def __str__(self) -> str:
        return self.html()


def measure(df: Any, metric: str, agg: str = "median", *, scale: float = 1.0, digits: int = 1) -> Figure:
    """``agg`` of ``df[metric]`` (rows with a value) times ``scale``; ``df`` is a load_results() slice."""
    present = df[df[metric].notna()] if metric in df.columns else df.iloc[0:0]
    if present.empty and agg != "count":
        raise ValueError(f"no values of {metric!r} in these rows")
    values = [float(v) for v in present[metric]] if metric in df.columns else []
    rows = tuple((str(c), int(r)) for c, r in zip(present["cell"], present["repeat"]))
    value = AGGREGATES[agg](values) * scale
    return Figure(value, metric, agg, rows, scale, digits)


OPS = {
    "pct_less": "percent by which the first is smaller than the second, 100 * (b - a) / b",
    "throughput_units": "Event Hubs throughput units for the scenario's events/s at these bytes per event",
    "ingress_units_month": "millions of 64 KB ingress units a month for the scenario (bytes per event, batch)",
}


def throughput_units_for(size: Figure) -> Figure:
    """TUs the scenario needs at ``size`` bytes per event (iotbench.model.cost rules)."""
    from iotbench.model.cost import Scenario, throughput_units

    s = Scenario()
    return Figure(throughput_units(s.events_per_s, size.value), digits=0, op="throughput_units", args=(size,))


def ingress_units_for(size: Figure, batch: Figure) -> Figure:
    """Millions of billed 64 KB ingress units in the scenario's month, ``batch`` readings per send."""
    from iotbench.model.cost import Scenario, billed_ingress_units

    s = Scenario()
    units = billed_ingress_units(s.events_per_month, size.value, int(batch.value))
    return Figure(units / 1e6, digits=1, op="ingress_units_month", args=(size, batch))


def percent_less(a: Figure, b: Figure, digits: int = 0) -> Figure:
    """How much smaller ``a`` is than ``b``, in percent of ``b``."""
    value = 100.0 * (b.value - a.value) / b.value if b.value else 0.0
    return Figure(value, digits=digits, op="pct_less", args=(a, b))


def fact(text: str, source: str) -> str:
    """A number from the outside world (a documented limit or price), with its source."""
    return f'<span class="fact" title="{html.escape(source, quote=True)}">{html.escape(text)}</span>'


def _repeats_needed(alpha: float) -> int:
    """Repeats of each side a two-sided rank test needs before its smallest p falls below ``alpha``."""
    n = 1
    while 2.0 / math.comb(2 * n, n) >= alpha:
        n += 1
    return n


def verdict(c: Comparison) -> str:
    """A comparison's verdict as HTML: the test named, its level a method constant, and p, the
    difference and its interval in the tooltip (numbers of a test, not recomputable with ``jq``)."""
    level = fact(f"{c.alpha:.0%}", "significance level of the test")
    words = f"{c.words} (a: the first named, b: the second)"
    said = f'<span class="verdict" title="{html.escape(words, quote=True)}">'
    if c.significant is None and c.a is not None and c.b is not None:
        n = _repeats_needed(c.alpha)
        return (
            f"{said}too few repeats to tell</span>: a {TEST} needs "
            f"{fact(str(n), f'smallest p with {n - 1} and {n - 1} repeats: {2 / math.comb(2 * n - 2, n - 1):.2g}')} "
            f"of each to reach {level}"
        )
    if c.significant is None:
        return f"{said}a single run</span>: significance not assessed"
    if c.significant:
        return f"{said}significant</span>: a {TEST} puts p below {level}"
    if c.p_value is not None and c.p_value < c.alpha:
        return f"{said}not significant</span>: a difference within the margin that matters"
    return f"{said}not significant</span>: a {TEST} finds p at or above {level}"
