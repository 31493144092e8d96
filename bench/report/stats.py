"""Repeats, confidence intervals and whether a difference is more than noise.

Two configurations differ significantly when the 95 % confidence intervals of
their repeats do not overlap: cruder than a t-test, but easy to check by eye in
the report's tables. With a single run there is no interval, and the report
says so instead of guessing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Interval", "Verdict", "ci95", "compare"]

# two-sided 95 % Student t quantiles by degrees of freedom (n - 1); 1.96 beyond 30
_T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    25: 2.060,
    30: 2.042,
}


def _t95(df: int) -> float:
    usable = [k for k in _T95 if k <= df]
    return _T95[max(usable)] if df <= 30 else 1.96


@dataclass(frozen=True)
class Interval:
    n: int
    mean: float
    low: float
    high: float


def ci95(values: Sequence[float]) -> Interval | None:
    """The 95 % interval of the mean of ``values``; None with fewer than two."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if len(vals) < 2:
        return None
    mean = statistics.fmean(vals)
    half = _t95(len(vals) - 1) * statistics.stdev(vals) / math.sqrt(len(vals))
    return Interval(len(vals), mean, mean - half, mean + half)


@dataclass(frozen=True)
class Verdict:
    significant: bool | None  # None: a single run, not assessed
    n: int  # the smaller number of repeats of the two

    @property
    def words(self) -> str:
        """HTML; the confidence level is marked as a method constant, not a measurement."""
        level = '<span class="fact" title="confidence level of the intervals">95%</span>'
        if self.significant is None:
            return "a single run: significance not assessed"
        if self.significant:
            return f"significant: the {level} intervals of the repeats do not overlap"
        return f"not significant: within the {level} intervals of the repeats"


def compare(a: Sequence[float], b: Sequence[float]) -> Verdict:
    ia, ib = ci95(a), ci95(b)
    if ia is None or ib is None:
        return Verdict(None, min(len(a), len(b)))
    return Verdict(ia.high < ib.low or ib.high < ia.low, min(ia.n, ib.n))
