from __future__ import annotations

import pytest

from iotbench.model.telemetry import Reading
from iotbench.pipeline.fleet import Fleet, FleetConfig


def fleet_readings(devices: int = 50, interval_s: float = 1.0, seconds: float = 10.0, seed: int = 3) -> list[Reading]:
    fleet = Fleet(FleetConfig(devices=devices, interval_s=interval_s, seed=seed))
    fleet.schedule(start=1_700_000_000.0, end=1_700_000_000.0 + seconds)
    return [reading for _, _, reading in fleet.due(float("inf"))]


@pytest.fixture(scope="session")
def readings() -> list[Reading]:
    """Realistic readings from the seeded generator (the same for every test run)."""
    return fleet_readings()
