"""Throughput over the readings meant for the window; a drain that ends on events; late apart from lost.

A shaped in-process link stands in for a broker with a stalled start, a duplicating
consumer group or a slow tail: every (device, seq) it holds back is exactly known.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import ClassVar

import pytest

from iotbench.model.spec import parse_spec
from iotbench.pipeline.runner import LEAD_S, run_cell
from iotbench.transports import TRANSPORTS
from iotbench.transports.inprocess import InProcessTransport

# (seconds since the schedule started) -> a delay per copy to deliver: [0.0] = as it comes
Shape = Callable[[float], list[float]]


class ShapedTransport(InProcessTransport):
    """The in-process broker with a link that delays and copies payloads by ``shape``."""

    name = "shaped"
    shape: ClassVar[Shape] = staticmethod(lambda t: [0.0])

    async def start(self, workdir) -> None:  # noqa: ANN001
        await super().start(workdir)
        self._t0 = time.time() + LEAD_S  # the runner's schedule starts about LEAD_S after set-up

    async def open_receiver(self, deliver):  # noqa: ANN001, ANN201
        loop = asyncio.get_running_loop()

        def shaped(payload: bytes) -> None:
            for delay in type(self).shape(time.time() - self._t0):
                if delay <= 0:
                    deliver(payload)
                else:
                    loop.call_later(delay, deliver, payload)

        return await super().open_receiver(shaped)


@pytest.fixture
def shaped():
    TRANSPORTS.register("shaped", "test_window_and_drain:ShapedTransport")
    yield ShapedTransport
    TRANSPORTS.unregister("shaped")
    ShapedTransport.shape = staticmethod(lambda t: [0.0])


def _run(tmp_path, **spec):
    spec = parse_spec(
        {
            "codecs": ["json"],
            "transports": ["shaped"],
            "batch": [1],
            "devices": 200,
            "interval_s": 1.0,
            "jitter": 0.0,
            **spec,
        }
    )
    return asyncio.run(run_cell(spec, spec.cells()[0], tmp_path / "cell"))


def test_warm_up_readings_arriving_in_the_window_do_not_count(tmp_path, shaped):
    # the link holds everything of the first 1.5 s (the 1 s warm-up and 0.5 s of the window) and then
    # lets it through at once: counting arrivals in the window made that 1.5 x the offered rate
    shaped.shape = staticmethod(lambda t: [1.5 - t] if t < 1.5 else [0.0])
    result = _run(tmp_path, warmup_s=1.0, duration_s=2.0, drain_timeout_s=3.0)
    assert result.status == "ok" and result.events_lost == 0
    assert 0.97 <= result.throughput_eps / result.target_eps <= 1.01, result.throughput_eps


def test_duplicates_count_once_in_the_window(tmp_path, shaped):
    shaped.shape = staticmethod(lambda t: [0.0, 0.0])
    result = _run(tmp_path, warmup_s=0.5, duration_s=2.0, drain_timeout_s=3.0)
    assert result.events_duplicated == result.events_sent and result.events_lost == 0
    assert 0.97 <= result.throughput_eps / result.target_eps <= 1.01, result.throughput_eps


def test_duplicates_do_not_end_the_drain_early(tmp_path, shaped):
    # every payload twice at once, but the last 0.5 s of readings 1.5 s late: the copies made the
    # payload count reach the sends before the held-back readings came, and the drain stopped
    shaped.shape = staticmethod(lambda t: [0.0, 0.0] if t < 1.5 else [1.5])
    result = _run(tmp_path, warmup_s=0.0, duration_s=2.0, drain_timeout_s=5.0)
    assert result.events_lost == 0 and result.events_late == 0
    assert result.events_stored == result.events_sent


def test_arrivals_after_the_drain_are_late_not_lost(tmp_path, shaped):
    # the last 0.5 s of readings arrive 1.5 s late; the drain waits only 0.5 s
    shaped.shape = staticmethod(lambda t: [0.0] if t < 1.5 else [1.5])
    result = _run(tmp_path, warmup_s=0.0, duration_s=2.0, drain_timeout_s=0.5)
    assert result.events_late > 50 and result.events_lost == 0
    assert result.events_stored == result.events_sent
