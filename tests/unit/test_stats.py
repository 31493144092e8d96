"""iotbench.stats and the results API's compare/intervals: fixed numbers, checked against scipy itself."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sp

import iotbench
from iotbench.results_api import metric_column
from iotbench.stats import RESAMPLES, SEED, compare_repeats, median_interval

FAST = [10.2, 11.0, 9.8, 10.5, 10.1]
SLOW = [15.2, 15.0, 14.8, 15.5, 15.1]


def test_the_interval_of_the_median_is_scipys_seeded_percentile_bootstrap():
    got = median_interval(FAST)
    ref = sp.bootstrap(
        (FAST,), np.median, n_resamples=RESAMPLES, method="percentile", rng=np.random.default_rng(SEED)
    ).confidence_interval
    assert got is not None and got.n == 5 and got.median == 10.2
    assert (got.low, got.high) == (ref.low, ref.high) == (9.8, 11.0)  # five repeats: smallest to largest
    assert median_interval(FAST) == got, "the same numbers give the same interval on every call"


def test_intervals_need_two_values_and_skip_missing_ones():
    assert median_interval([]) is None and median_interval([3.0]) is None
    assert median_interval([3.0, None, float("nan")]) is None
    assert median_interval([4.0, 4.0, 4.0]) == median_interval([4.0, 4.0, 4.0, None])
    same = median_interval([4.0, 4.0, 4.0])
    assert same is not None and (same.low, same.median, same.high) == (4.0, 4.0, 4.0)


def test_separated_repeats_are_significant_with_scipys_p_and_the_effect_size():
    c = compare_repeats(FAST, SLOW)
    assert c.p_value == pytest.approx(sp.mannwhitneyu(FAST, SLOW, method="exact").pvalue) == 2 / math.comb(10, 5)
    assert c.significant is True and c.direction == "higher"
    assert c.difference == pytest.approx(15.1 - 10.2) and c.ratio == pytest.approx(15.1 / 10.2)
    ref = sp.bootstrap(
        (FAST, SLOW),
        lambda a, b, axis: np.median(b, axis=axis) - np.median(a, axis=axis),
        n_resamples=RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(SEED),
    ).confidence_interval
    assert (c.difference_low, c.difference_high) == pytest.approx((ref.low, ref.high))
    assert c.difference_low <= c.difference <= c.difference_high
    mirrored = compare_repeats(SLOW, FAST)
    assert mirrored.direction == "lower" and mirrored.p_value == c.p_value


def test_overlapping_repeats_are_not_significant():
    a, b = [5.0, 5.2, 4.9, 5.1, 5.3], [5.12, 4.8, 5.05, 5.25, 5.15]
    c = compare_repeats(a, b)
    assert c.p_value == pytest.approx(sp.mannwhitneyu(a, b, method="exact").pvalue)
    assert c.significant is False and c.direction == "" and "not significant" in c.words


def test_ties_get_the_exact_permutation_p_not_the_normal_approximation():
    # a histogram's 3 significant digits make equal repeats common; scipy's default goes asymptotic then
    a, b = [0.016, 0.016, 0.013, 0.018, 0.015], [5.2, 5.24, 5.3, 5.21, 5.25]
    assert compare_repeats(a, b).p_value == pytest.approx(2 / 252)
    assert sp.mannwhitneyu(a, b).pvalue > 0.01  # what "auto" would have said
    a, b = [1, 1, 2, 2, 3], [1, 2, 2, 3, 3]
    exact = sp.mannwhitneyu(a, b, method=sp.PermutationMethod(n_resamples=RESAMPLES)).pvalue
    assert compare_repeats(a, b).p_value == pytest.approx(exact)
    assert compare_repeats([4.0] * 5, [4.0] * 5).significant is False


def test_too_few_repeats_are_not_assessed_rather_than_called_a_tie():
    for a, b in (([1.0, 1.1, 1.2], [9.0, 9.1, 9.2]), ([1.0, 1.1], [9.0, 9.1]), ([1.0, 1.1, 1.2, 1.3], [9.0, 9.1, 9.2])):
        c = compare_repeats(a, b)
        assert c.significant is None and c.p_value is None and "too few repeats" in c.reason, (a, b)
        assert c.difference > 7  # the size is still given
    assert compare_repeats([1.0, 1.1, 1.2, 1.3], [9.0, 9.1, 9.2, 9.3]).significant is True  # 4 and 4: p = 0.029
    single = compare_repeats([1.0], [9.0, 9.1, 9.2, 9.3, 9.4])
    assert single.significant is None and single.a is None and math.isnan(single.difference_low)


def test_a_margin_keeps_a_small_real_difference_from_being_called_significant():
    a, b = [1.00, 1.01, 1.02, 1.03, 1.04], [1.10, 1.11, 1.12, 1.13, 1.14]  # separated, 0.1 apart
    assert compare_repeats(a, b).significant is True
    within = compare_repeats(a, b, margin=0.5)
    assert within.significant is False and within.p_value == pytest.approx(2 / 252) and "margin" in within.reason
    assert compare_repeats(a, b, margin=0.05).significant is True
    with pytest.raises(ValueError, match="margin"):
        compare_repeats(a, b, margin=-1)


def _frame() -> pd.DataFrame:
    rows = []
    for cell, variant, values in (("x/fast", "fast", FAST), ("x/slow", "slow", SLOW)):
        for r, v in enumerate(values):
            rows.append({"cell": cell, "variant": variant, "repeat": r, "status": "ok", "latency_publish_p50_ms": v})
    rows.append({"cell": "x/slow", "variant": "slow", "repeat": 5, "status": "failed", "latency_publish_p50_ms": 99.0})
    rows.append({"cell": "x/once", "variant": "once", "repeat": 0, "status": "ok", "latency_publish_p50_ms": 7.0})
    return pd.DataFrame(rows)


def test_compare_picks_configurations_by_cell_id_or_columns_and_ignores_failed_runs():
    df = _frame()
    c = iotbench.compare(df, a="x/fast", b={"variant": "slow"}, metric="latency_ms.publish.p50")
    assert c.b is not None and c.b.n == 5  # the failed sixth run does not count
    assert c == compare_repeats(FAST, SLOW)
    with pytest.raises(ValueError, match="matches no cell"):
        iotbench.compare(df, a="x/none", b="x/slow", metric="latency_publish_p50_ms")
    with pytest.raises(ValueError, match="matches 3 cells"):
        iotbench.compare(df, a={"status": "ok"}, b="x/slow", metric="latency_publish_p50_ms")
    with pytest.raises(KeyError, match="no such column"):
        iotbench.compare(df, a="x/fast", b="x/slow", metric="latency_ms.publish.p42")


def test_intervals_per_configuration():
    table = iotbench.intervals(_frame(), "latency_publish_p50_ms")
    assert list(table.columns) == ["cell", "n", "median", "low", "high"]
    fast, once, slow = (table.iloc[i] for i in range(3))
    assert (fast["cell"], fast["n"], fast["median"], fast["low"], fast["high"]) == ("x/fast", 5, 10.2, 9.8, 11.0)
    assert slow["n"] == 5 and slow["median"] == 15.1
    assert once["n"] == 1 and once["median"] == 7.0 and math.isnan(once["low"])
    by_variant = iotbench.intervals(_frame(), "latency_publish_p50_ms", by=["variant"])
    assert list(by_variant["variant"]) == ["fast", "once", "slow"]


def test_metric_names_map_to_columns():
    assert metric_column("latency_ms.e2e_received.p99") == "latency_e2e_received_p99_ms"
    assert metric_column("transport_counters.retries") == "transport_counters_retries"
    assert metric_column("throughput_eps") == "throughput_eps"


def test_the_public_api_exports_them():
    assert {"compare", "intervals", "load_results"} <= set(iotbench.__all__)
