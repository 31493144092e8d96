"""The readings every codec study measures on: realistic, seeded, the same every call.

1,000 devices of the fleet generator, one reading a minute: a batch of ``BATCH`` holds 100
devices' readings of the same minute, the way a gateway batches.
"""

from __future__ import annotations

import functools

from iotbench.model.telemetry import Reading
from iotbench.pipeline.fleet import Fleet, FleetConfig

__all__ = ["BATCH", "sample_readings"]

BATCH = 100


@functools.cache
def _sample(count: int) -> tuple[Reading, ...]:
    fleet = Fleet(FleetConfig(devices=1000, interval_s=60.0, seed=7))
    start = 1_767_225_600.0  # 2026-01-01 UTC
    fleet.schedule(start=start, end=start + 60.0 * (count // 1000 + 1))
    return tuple(reading for _, _, reading in fleet.due(float("inf"), limit=count))


def sample_readings(count: int = 1000) -> list[Reading]:
    """``count`` realistic readings in intended-time order (the same every call)."""
    return list(_sample(count))
