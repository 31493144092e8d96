"""The generator is deterministic and realistic; validation names what is wrong."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import msgspec
import pytest
from conftest import fleet_readings

from iotbench.model.telemetry import Reading, device_id, validate


def test_same_seed_same_readings_other_seed_other_values():
    assert fleet_readings(seed=9) == fleet_readings(seed=9)
    assert fleet_readings(seed=9) != fleet_readings(seed=10)


def test_device_ids_look_real_and_repeat(readings):
    ids = [r.device_id for r in readings]
    assert all(re.fullmatch(r"b\d{4}-a\d{3}-s1", i) for i in ids)
    assert len(set(ids)) == 50 and len(ids) >= 450  # every device reports again and again
    assert device_id(4321) == "b0021-a121-s1"


def test_values_walk_slowly_and_alarms_are_rare(readings):
    by_device: dict[str, list[Reading]] = {}
    for r in readings:
        by_device.setdefault(r.device_id, []).append(r)
    for series in by_device.values():
        assert [r.seq for r in series] == list(range(len(series)))
        steps = [abs(b.temperature_c - a.temperature_c) for a, b in zip(series, series[1:])]
        assert max(steps) < 0.5  # a room does not jump degrees between readings
        assert all(15.0 < r.temperature_c < 27.0 and 0 <= r.humidity_pct <= 100 for r in series)
    assert sum(r.smoke_alarm or r.water_leak for r in readings) < len(readings) * 0.01


def test_values_carry_sensor_precision_and_utc_microseconds(readings):
    for r in readings[:100]:
        assert r.temperature_c == round(r.temperature_c, 2)
        assert r.humidity_pct == round(r.humidity_pct, 1) and r.battery_pct == round(r.battery_pct, 1)
        assert r.observed_at.tzinfo is not None and r.observed_at.utcoffset().total_seconds() == 0
    assert any(r.observed_at.microsecond for r in readings)


GOOD = dict(
    device_id="b0000-a001-s1",
    seq=3,
    observed_at=datetime(2026, 1, 1, tzinfo=UTC),
    temperature_c=21.0,
    humidity_pct=40.0,
    smoke_alarm=False,
    water_leak=False,
    battery_pct=90.0,
)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"humidity_pct": 150.0}, "humidity_pct 150.0 outside 0..100"),
        ({"temperature_c": float("nan")}, "temperature_c nan outside -60..100"),
        ({"battery_pct": -1.0}, "battery_pct -1.0 outside 0..100"),
        ({"seq": -1}, "seq -1 is negative"),
        ({"device_id": ""}, "device_id '' is empty or longer than 128 characters"),
        ({"observed_at": datetime(2026, 1, 1)}, "observed_at is not a timezone-aware datetime"),
        ({"temperature_c": "hot"}, "temperature_c 'hot' is not a number"),
        ({"smoke_alarm": 1}, "smoke_alarm and water_leak must be booleans"),
    ],
)
def test_validate_names_the_problem(change, reason):
    assert validate(Reading(**GOOD)) is None
    assert validate(msgspec.structs.replace(Reading(**GOOD), **change)) == reason
