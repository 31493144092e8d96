"""Throughput over the readings meant for the window; a drain that ends on events; late apart from lost.

A shaped in-process link stands in for a broker with a stalled start, a duplicating
consumer group or a slow tail: every (device, seq) it holds back is exactly known.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import pytest

from iotbench.model.spec import parse_spec
from iotbench.pipeline.runner import run_cell
from iotbench.transports import TRANSPORTS
from iotbench.transports.inprocess import InProcessOptions, InProcessTransport
from iotbench.transports.options import option

HOLD_S = 1.5  # what the shapes hold back: the readings meant for the schedule's first 1.5 s, or the rest


def _stall(t: float, since_start: float) -> list[float]:
    """Everything meant for the first HOLD_S arrives at once when they are over."""
    return [HOLD_S - since_start] if t < HOLD_S else [0.0]


SHAPES = {  # (intended time since the schedule started, arrival time since it started) -> a delay per copy
    "none": lambda t, now: [0.0],
    "stall": _stall,
    "double": lambda t, now: [0.0, 0.0],
    "double-then-late": lambda t, now: [0.0, 0.0] if t < HOLD_S else [HOLD_S],
    "late-tail": lambda t, now: [0.0] if t < HOLD_S else [HOLD_S],
}


@dataclass(frozen=True)
class ShapedOptions(InProcessOptions):
    transport: ClassVar[str] = "shaped"
    shape: str = option("none", "how the link delays and copies payloads", choices=tuple(SHAPES))


class ShapedTransport(InProcessTransport):
    """The in-process link, delaying and copying payloads by the intended time of their reading.

    The shape is an option, so it reaches the receiving side's own process like any option;
    the schedule's start is the earliest intended time seen (jitter 0: the first device fires
    within 1/200 s of it).
    """

    name = "shaped"
    Options: ClassVar[type[ShapedOptions]] = ShapedOptions

    def __init__(self, **options: Any) -> None:
        self.options = ShapedOptions(**options)
        self._path = None
        self._start: float | None = None

    async def open_receiver(self, deliver):  # noqa: ANN001, ANN201
        loop, shape = asyncio.get_running_loop(), SHAPES[self.options.shape]

        def shaped(payload: bytes) -> None:
            intended = datetime.fromisoformat(json.loads(payload)["observed_at"]).timestamp()
            self._start = intended if self._start is None else min(self._start, intended)
            for delay in shape(intended - self._start, time.time() - self._start):
                if delay <= 0:
                    deliver(payload)
                else:
                    loop.call_later(delay, deliver, payload)

        return await super().open_receiver(shaped)


@pytest.fixture
def shaped():
    TRANSPORTS.register("shaped", "test_window_and_drain:ShapedTransport")
    yield
    TRANSPORTS.unregister("shaped")


def _run(tmp_path, shape, **spec):
    spec = parse_spec(
        {
            "codecs": ["json"],
            "transports": ["shaped"],
            "batch": [1],
            "devices": 200,
            "interval_s": 1.0,
            "jitter": 0.0,
            "transport_options": {"shaped": {"shape": shape}},
            **spec,
        }
    )
    return asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell"))


def test_warm_up_readings_arriving_in_the_window_do_not_count(tmp_path, shaped):
    # the link holds everything of the first 1.5 s (the 1 s warm-up and 0.5 s of the window) and then
    # lets it through at once: counting arrivals in the window made that 1.5 x the offered rate
    result = _run(tmp_path, "stall", warmup_s=1.0, duration_s=2.0, drain_timeout_s=3.0)
    assert result.status == "ok" and result.events_lost == 0
    assert 0.97 <= result.throughput_eps / result.target_eps <= 1.01, result.throughput_eps


def test_duplicates_count_once_in_the_window(tmp_path, shaped):
    result = _run(tmp_path, "double", warmup_s=0.5, duration_s=2.0, drain_timeout_s=3.0)
    assert result.events_duplicated == result.events_sent and result.events_lost == 0
    assert 0.97 <= result.throughput_eps / result.target_eps <= 1.01, result.throughput_eps


def test_duplicates_do_not_end_the_drain_early(tmp_path, shaped):
    # every payload twice at once, but the last 0.5 s of readings 1.5 s late: the copies made the
    # payload count reach the sends before the held-back readings came, and the drain stopped
    result = _run(tmp_path, "double-then-late", warmup_s=0.0, duration_s=2.0, drain_timeout_s=5.0)
    assert result.events_lost == 0 and result.events_late == 0
    assert result.events_stored == result.events_sent


def test_arrivals_after_the_drain_are_late_not_lost(tmp_path, shaped):
    # the last 0.5 s of readings arrive 1.5 s late; the drain waits only 0.5 s
    result = _run(tmp_path, "late-tail", warmup_s=0.0, duration_s=2.0, drain_timeout_s=0.5)
    assert result.events_late > 50 and result.events_lost == 0
    assert result.events_stored == result.events_sent
