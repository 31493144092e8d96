"""Repeats: a figure's median with its 95 % interval, and whether two configurations differ.

Each repeat of a cell gives one number per metric (a percentile of that run's histogram, a
rate, a size). Over a configuration's repeats:

- **The figure is the median** of the repeats, as everywhere in the report: on a shared
  machine one repeat disturbed by a neighbour moves a mean (and a t interval, which assumes
  normal noise) a long way; it moves the median by at most one rank.
- **Its interval** is a percentile bootstrap of the median (``scipy.stats.bootstrap``,
  9,999 resamples) with a fixed seed, so a results folder renders the same report every
  time. A bootstrap median cannot leave the range of the repeats: with 5 repeats the
  interval runs from the smallest to the largest, which holds the true median with
  probability 1 - 2/2**5 = 94 % whatever the distribution; with fewer repeats it is
  narrower than 95 % in truth -- run ``repeats = 5`` or more when intervals matter.
- **Two configurations differ significantly** when a two-sided Mann-Whitney U test of their
  repeats gives p < 0.05 (``scipy.stats.mannwhitneyu``: exact over every split of the pooled
  repeats, ties included, up to 7 and 7 repeats; the normal approximation beyond). A rank
  test needs no normal noise and is not thrown by one outlying repeat; its price is that few
  repeats can never reach 5 %: the smallest two-sided p is 2 / C(n_a + n_b, n_a) -- 0.1 with
  3 and 3 repeats, 0.029 with 4 and 4, 0.008 with 5 and 5 -- so below that the verdict is
  "too few repeats to tell" (``significant is None``), never a claimed tie.
- **By how much**: the difference of the medians (b - a) with its own 95 % bootstrap
  interval (each side resampled on its own, same seed), and their ratio b / a.
- **A margin** (optional, in the metric's unit) is the smallest difference that matters:
  a difference the test finds but smaller than the margin is not called significant
  (pyperf's ``--min-speed`` idea). Truly identical configurations still get p < 0.05 one
  time in twenty, and a drifting machine makes it more often; a margin keeps such noise
  from being reported as a finding.

>>> c = compare_repeats([1.0, 1.1, 0.9, 1.05, 1.2], [6.1, 6.0, 6.3, 5.9, 6.2])
>>> c.significant, round(c.p_value, 4), round(c.difference, 2)
(True, 0.0079, 5.05)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ALPHA", "CONFIDENCE", "TEST", "Comparison", "Interval", "compare_repeats", "median_interval"]

CONFIDENCE = 0.95
ALPHA = 0.05
TEST = "two-sided Mann-Whitney U test of the repeats"
RESAMPLES = 9_999
SEED = 20261129  # fixed: a results folder gives the same intervals on every rendering


@dataclass(frozen=True)
class Interval:
    """The median of ``n`` repeats and its 95 % interval (percentile bootstrap)."""

    n: int
    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:.4g} [{self.low:.4g} .. {self.high:.4g}] (n={self.n})"


def _values(values: Sequence[Any]) -> list[float]:
    out = []
    for v in values:
        if v is None:
            continue
        f = float(v)
        if not math.isnan(f):
            out.append(f)
    return out


def _rng() -> Any:
    import numpy as np

    return np.random.default_rng(SEED)


def _median(sample: Any, axis: int = -1) -> Any:
    import numpy as np

    return np.median(sample, axis=axis)


def _median_difference(a: Any, b: Any, axis: int = -1) -> Any:
    import numpy as np

    return np.median(b, axis=axis) - np.median(a, axis=axis)


def median_interval(values: Sequence[Any], confidence: float = CONFIDENCE) -> Interval | None:
    """The median of ``values`` (None and NaN left out) and its bootstrap interval; None below two.

    >>> median_interval([10.2, 11.0, 9.8, 10.5, 10.1])
    Interval(n=5, median=10.2, low=9.8, high=11.0)
    """
    vals = _values(values)
    if len(vals) < 2:
        return None
    mid = statistics.median(vals)
    if min(vals) == max(vals):  # no spread: nothing to resample (scipy would warn)
        return Interval(len(vals), mid, mid, mid)
    from scipy import stats

    ci = stats.bootstrap(
        (vals,), _median, confidence_level=confidence, n_resamples=RESAMPLES, method="percentile", rng=_rng()
    ).confidence_interval
    return Interval(len(vals), mid, float(ci.low), float(ci.high))


@dataclass(frozen=True)
class Comparison:
    """Configuration b against configuration a on one metric, over their repeats."""

    a: Interval | None
    b: Interval | None
    difference: float  # median(b) - median(a); NaN when a side has no value
    difference_low: float  # its 95 % bootstrap interval (NaN below two repeats a side)
    difference_high: float
    ratio: float | None  # median(b) / median(a); None when median(a) is 0 or missing
    p_value: float | None  # None: not testable (a single run, or too few repeats to reach alpha)
    significant: bool | None  # None: not assessed -- see ``reason``
    reason: str  # why, in words: the test's outcome, or why it could not be made
    alpha: float = ALPHA
    margin: float = 0.0
    test: str = TEST

    @property
    def direction(self) -> str:
        """'higher' or 'lower' (b against a) when significant, else ''."""
        if not self.significant:
            return ""
        return "higher" if self.difference > 0 else "lower"

    @property
    def words(self) -> str:
        """The verdict as a sentence, e.g. 'significant: b is higher by 5.1 [4.9 .. 5.3] (x 12.5); ...'."""
        if self.significant is None:
            return f"not assessed: {self.reason}"
        head = f"b is {self.direction} by {abs(self.difference):.4g}" if self.significant else "not significant"
        size = f"difference b - a {self.difference:+.4g} [{self.difference_low:+.4g} .. {self.difference_high:+.4g}]"
        if self.ratio is not None:
            size += f", ratio {self.ratio:.3g}"
        return f"{head}: {size}; {self.reason}"

    def __str__(self) -> str:
        return self.words


def _smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p an exact rank test can give for these sample sizes."""
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


def compare_repeats(a: Sequence[Any], b: Sequence[Any], *, alpha: float = ALPHA, margin: float = 0.0) -> Comparison:
    """Whether ``b``'s repeats differ from ``a``'s (Mann-Whitney U), and by how much (medians).

    ``margin`` (>= 0, the metric's unit): a difference of the medians within it is not called
    significant, whatever p is.

    >>> compare_repeats([5.0, 5.2, 4.9, 5.1, 5.0], [5.1, 4.9, 5.0, 5.2, 5.0]).significant
    False
    >>> compare_repeats([1.0, 2.0], [3.0, 4.0]).reason
    'too few repeats to tell: with 2 and 2 the smallest p a rank test gives is 0.33, not below 0.05'
    """
    if margin < 0:
        raise ValueError(f"margin {margin!r} is negative; give the smallest difference that matters (>= 0)")
    va, vb = _values(a), _values(b)
    ia, ib = median_interval(va), median_interval(vb)
    ma = statistics.median(va) if va else math.nan
    mb = statistics.median(vb) if vb else math.nan
    diff = mb - ma
    ratio = mb / ma if va and vb and ma != 0 else None
    low = high = math.nan
    if ia is not None and ib is not None:
        low, high = _difference_interval(va, vb)
    if ia is None or ib is None:
        counts = f"{len(va)} and {len(vb)} runs with a value"
        return Comparison(ia, ib, diff, low, high, ratio, None, None, f"no repeats to compare: {counts}", alpha, margin)
    smallest = _smallest_p(ia.n, ib.n)
    if smallest >= alpha:
        reason = (
            f"too few repeats to tell: with {ia.n} and {ib.n} the smallest p a rank test gives is "
            f"{smallest:.2g}, not below {alpha:g}"
        )
        return Comparison(ia, ib, diff, low, high, ratio, None, None, reason, alpha, margin)
    from scipy import stats

    # every split of the pooled repeats when there are few (exact, ties too: a histogram's 3 significant
    # digits make equal repeats common, and the normal approximation scipy uses for ties is poor at n=5)
    small = math.comb(ia.n + ib.n, ia.n) <= RESAMPLES
    method = stats.PermutationMethod(n_resamples=RESAMPLES) if small else "asymptotic"
    p = float(stats.mannwhitneyu(va, vb, alternative="two-sided", method=method).pvalue)
    if math.isnan(p):  # every value the same on both sides
        p = 1.0
    found = p < alpha
    reason = f"p = {p:.2g} ({TEST}, {ia.n} and {ib.n} repeats, significant below {alpha:g})"
    if found and abs(diff) <= margin:
        reason += f"; the difference is within the margin of {margin:g} that matters"
    return Comparison(ia, ib, diff, low, high, ratio, p, found and abs(diff) > margin, reason, alpha, margin)


def _difference_interval(a: list[float], b: list[float]) -> tuple[float, float]:
    if min(a) == max(a) and min(b) == max(b):
        d = statistics.median(b) - statistics.median(a)
        return d, d
    from scipy import stats

    ci = stats.bootstrap(
        (a, b),
        _median_difference,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        method="percentile",
        rng=_rng(),
    ).confidence_interval
    return float(ci.low), float(ci.high)
