"""Repeats give intervals, and a comparison tells a real slowdown from noise (issue 11, item 4).

A real matrix with ``repeats = 5`` on a test transport: the in-process link whose sender sleeps
``delay_ms`` before each send. Three configurations -- twins ``a`` and ``b`` with no delay (the
same code path, told apart only by a label option) and ``a`` with 5 ms -- so "identical" is
truly identical, not the in-process transport against a wrapper of it.

Why this cannot flake on a loaded 2-core machine: the metric is publish p50 (send ->
acknowledgement), ~0.01-0.05 ms in-process because the send hands the payload to a socket
buffer without waiting, so neither the load nor a descheduled process moves its median much;
the delay adds 5 ms to every send. The slow side's five medians all lie above the fast side's
(p = 2/252, the smallest a rank test gives with 5 and 5), whatever the load. The twins are
compared with a margin of 1 ms, the smallest difference the question cares about: a rank test
alone calls identical configurations different one time in twenty (and more often when the
load drifts between cells, which run their repeats one after another); the margin needs the
twins' medians 1 ms apart, 20-100 times their size, before that can happen.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

import iotbench
from iotbench.model.spec import parse_spec
from iotbench.pipeline.runner import run_matrix
from iotbench.transports import TRANSPORTS
from iotbench.transports.inprocess import InProcessOptions, InProcessTransport
from iotbench.transports.options import option

DELAY_MS = 5.0
MARGIN_MS = 1.0  # the smallest publish-latency difference that matters here: 20-100x the twins' p50
METRIC = "latency_ms.publish.p50"


@dataclass(frozen=True)
class SlowedOptions(InProcessOptions):
    transport: ClassVar[str] = "slowed"
    delay_ms: float = option(0.0, "sleep before each send", low=0.0, high=1000.0, unit="ms")
    twin: str = option("a", "a label only: tells identical configurations apart", choices=("a", "b"))


class SlowedTransport(InProcessTransport):
    """The in-process link with ``delay_ms`` slept (not busy) in each send: a slower broker's ack."""

    name = "slowed"
    Options: ClassVar[type[SlowedOptions]] = SlowedOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**{k: v for k, v in options.items() if k not in ("delay_ms", "twin")})
        self.options = SlowedOptions(**options)

    async def open_sender(self, index: int):  # noqa: ANN201
        inner = await super().open_sender(index)
        delay = self.options.delay_ms / 1000.0

        class Sender:
            async def send(self, key: str, payload: bytes) -> None:
                if delay:
                    await asyncio.sleep(delay)
                await inner.send(key, payload)

            async def close(self) -> None:
                await inner.close()

        return Sender()


@pytest.fixture(scope="module")
def repeated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The results of the matrix: 3 configurations x 5 repeats, cells of ~1.5 s."""
    TRANSPORTS.register("slowed", f"{__name__}:SlowedTransport")
    try:
        spec = parse_spec(
            {
                "codecs": ["json"],
                "transports": ["slowed"],
                "batch": [1],
                "devices": 100,
                "interval_s": 1.0,
                "duration_s": 1.0,
                "warmup_s": 0.0,
                "drain_timeout_s": 2.0,
                "repeats": 5,
                "transport_options": {"slowed": {"delay_ms": [0.0, DELAY_MS], "twin": ["a", "b"]}},
                "exclude": [{"delay_ms": DELAY_MS, "twin": "b"}],
            }
        )
        out = tmp_path_factory.mktemp("repeats")
        results = run_matrix(spec, out)
    finally:
        TRANSPORTS.unregister("slowed")
    assert len(results) == 15 and all(r.status == "ok" for r in results), [r.error for r in results]
    return out


def _cell(df: Any, delay: float, twin: str) -> str:
    cells = set(df[(df["option_delay_ms"] == delay) & (df["option_twin"] == twin)]["cell"])
    assert len(cells) == 1, cells
    return cells.pop()


@pytest.mark.slow
def test_five_repeats_give_each_figure_a_median_and_an_interval(repeated: Any) -> None:
    table = iotbench.intervals(repeated, METRIC)
    assert len(table) == 3 and list(table["n"]) == [5, 5, 5]
    assert (table["low"] <= table["median"]).all() and (table["median"] <= table["high"]).all()
    assert not table[["low", "high"]].isna().any().any()
    assert iotbench.intervals(repeated, METRIC).equals(table), "the intervals change between calls"


@pytest.mark.slow
def test_identical_configurations_are_not_significantly_different(repeated: Any) -> None:
    df = iotbench.load_results(repeated)
    c = iotbench.compare(df, a=_cell(df, 0.0, "a"), b=_cell(df, 0.0, "b"), metric=METRIC, margin=MARGIN_MS)
    assert c.significant is False, c.words
    assert abs(c.difference) < MARGIN_MS and c.a is not None and c.a.median < MARGIN_MS, c.words


@pytest.mark.slow
def test_a_slowed_configuration_is_significantly_slower_by_about_the_delay(repeated: Any) -> None:
    df = iotbench.load_results(repeated)
    fast, slow = _cell(df, 0.0, "a"), _cell(df, DELAY_MS, "a")
    c = iotbench.compare(df, a=fast, b=slow, metric=METRIC, margin=MARGIN_MS)
    assert c.significant is True and c.direction == "higher", c.words
    assert c.a is not None and c.b is not None and c.a.high < c.b.low, c.words  # every slow repeat above every fast
    assert math.isclose(c.p_value or 1.0, 2 / math.comb(10, 5)), c.words  # so p is the smallest there is
    # asyncio's sleep never wakes early by more than the loop's clock step (uvloop: 1 ms); a loaded
    # machine only adds to it
    assert DELAY_MS - 1.0 <= c.difference <= DELAY_MS * 3, c.words
    assert MARGIN_MS < c.difference_low <= c.difference <= c.difference_high, c.words
    assert c.ratio is not None and c.ratio > 10
    # the other way round: the same verdict, mirrored
    back = iotbench.compare(df, a=slow, b=fast, metric=METRIC, margin=MARGIN_MS)
    assert back.significant is True and back.direction == "lower" and back.difference == -c.difference


@pytest.mark.slow
def test_the_report_names_its_test(repeated: Any) -> None:
    from iotbench.report import render_report

    html = render_report(repeated)
    assert "Mann-Whitney U" in html and "percentile bootstrap of the median" in html


def test_a_matrix_table_asks_for_its_own_repeats() -> None:
    spec = parse_spec(
        {
            "codecs": ["json"],
            "transports": ["inprocess"],
            "devices": 10,
            "interval_s": 1.0,
            "matrix": [{"batch": [1], "repeats": 5}, {"batch": [10]}],
        }
    )
    assert [(c.batch, c.repeat) for c in spec.cells()] == [(1, 0), (1, 1), (1, 2), (1, 3), (1, 4), (10, 0)]
