"""The smart-building reading and a seeded, realistic generator of them.

A reading is what one apartment sensor reports once a minute. The generator gives
every device a slow random walk (temperature, humidity, a draining battery) and rare
alarms, and device ids that repeat and look like real ones, because compressed sizes
only mean something on realistic data (random UUIDs and white noise compress far
worse than real telemetry: see FACTS.md, "Codecs").
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import msgspec

__all__ = ["SCHEMA_VERSION", "MAX_SEQ", "Reading", "DeviceState", "device_id", "validate"]

SCHEMA_VERSION = 1
# Bounds on what a decoded reading may carry: the consumer's ledgers and histograms are sized
# from readings that may come from anywhere (a replaying device, a fuzzer, an old run).
MAX_SEQ = (1 << 24) - 1  # 16 M readings: a device at one a second for 194 days
YEARS = (2000, 2100)  # observed_at outside this is a broken clock or a forged reading
MAX_SCHEMA_VERSION = 1000
UTC = UTC
APARTMENTS_PER_BUILDING = 200


class Reading(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One telemetry event.

    >>> r = Reading(device_id="b0000-a001-s1", seq=0,
    ...             observed_at=datetime(2026, 1, 1, tzinfo=UTC), temperature_c=21.5,
    ...             humidity_pct=40.0, smoke_alarm=False, water_leak=False,
    ...             battery_pct=99.5)
    >>> r.schema_version
    1
    """

    device_id: str
    seq: int
    observed_at: datetime  # UTC, microsecond resolution: it is the intended send time
    temperature_c: float
    humidity_pct: float
    smoke_alarm: bool
    water_leak: bool
    battery_pct: float
    schema_version: int = SCHEMA_VERSION


FIELDS: tuple[str, ...] = Reading.__struct_fields__


def device_id(index: int, prefix: str = "") -> str:
    """A building-apartment-sensor id: ``device_id(4321) == 'b0021-a121-s1'``.

    ``prefix`` makes the ids of one run unique (``device_id(4321, 'k3f9-')``): against a
    hub that keeps earlier runs' events, an old (device, seq) cannot stand in for a lost one.
    """
    building, apartment = divmod(index, APARTMENTS_PER_BUILDING)
    return f"{prefix}b{building:04d}-a{apartment:03d}-s1"


class DeviceState:
    """The slowly moving state of one device; ``next(observed_at)`` makes its next reading.

    One device's readings (a sample, a test); the fleet (``iotbench.pipeline.fleet``) makes a
    whole fleet's with the same model as arrays.

    Values are rounded the way sensors report them (0.01 C, 0.1 %), so text formats
    carry realistic digit counts.
    """

    __slots__ = ("id", "seq", "temperature", "humidity", "battery", "rng")

    def __init__(self, index: int, rng: random.Random, prefix: str = "") -> None:
        self.id = device_id(index, prefix)
        self.seq = 0
        self.rng = rng
        self.temperature = rng.uniform(18.0, 24.0)
        self.humidity = rng.uniform(30.0, 55.0)
        self.battery = rng.uniform(60.0, 100.0)

    def next(self, observed_at: float) -> Reading:
        rnd = self.rng.random
        # Mean-reverting walks: a room drifts, HVAC pulls it back. Uniform steps keep
        # this cheap (the generator runs 100,000+ times a second) and look the same.
        temperature = self.temperature = self.temperature + 0.05 * (21.0 - self.temperature) + (rnd() - 0.5) * 0.28
        humidity = self.humidity + 0.05 * (42.0 - self.humidity) + (rnd() - 0.5) * 1.0
        humidity = self.humidity = 0.0 if humidity < 0.0 else 100.0 if humidity > 100.0 else humidity
        battery = self.battery = self.battery - 0.001 if self.battery > 0.001 else 0.0
        alarm = rnd()
        seq = self.seq
        self.seq = seq + 1
        return Reading(
            device_id=self.id,
            seq=seq,
            observed_at=datetime.fromtimestamp(observed_at, UTC),
            # int(x * 100 + 0.5) / 100 is the double nearest the 2-decimal value, as
            # round() would give for these non-negative values, at a third of its cost
            temperature_c=int(temperature * 100.0 + 0.5) / 100.0,
            humidity_pct=int(humidity * 10.0 + 0.5) / 10.0,
            smoke_alarm=alarm < 1e-4,
            water_leak=1e-4 <= alarm < 2e-4,
            battery_pct=int(battery * 10.0 + 0.5) / 10.0,
        )


def validate(reading: Reading) -> str | None:
    """The reason a decoded reading is not plausible, or None when it is.

    The common case (a plausible reading) is one expression; only a reading that
    fails it pays for finding the reason.

    >>> validate(Reading(device_id="x", seq=-1, observed_at=datetime(2026, 1, 1, tzinfo=UTC),
    ...     temperature_c=20.0, humidity_pct=40.0, smoke_alarm=False, water_leak=False,
    ...     battery_pct=50.0))
    'seq -1 is negative'
    """
    try:
        if (
            type(reading) is Reading
            and type(reading.device_id) is str
            and 0 < len(reading.device_id) <= 128
            and type(reading.seq) is int
            and 0 <= reading.seq <= MAX_SEQ
            and type(reading.observed_at) is datetime
            and reading.observed_at.tzinfo is not None
            and YEARS[0] <= reading.observed_at.year < YEARS[1]
            and type(reading.schema_version) is int
            and 0 < reading.schema_version <= MAX_SCHEMA_VERSION
            and -60.0 <= reading.temperature_c <= 100.0
            and 0.0 <= reading.humidity_pct <= 100.0
            and 0.0 <= reading.battery_pct <= 100.0
            and type(reading.smoke_alarm) is bool
            and type(reading.water_leak) is bool
        ):
            return None
    except TypeError:
        pass
    return _reason(reading)


def _reason(reading: Reading) -> str:
    if type(reading) is not Reading:
        return f"not a Reading: {type(reading).__name__}"
    if type(reading.device_id) is not str or not reading.device_id or len(reading.device_id) > 128:
        return f"device_id {reading.device_id!r} is empty or longer than 128 characters"
    if type(reading.seq) is not int or reading.seq < 0:
        return f"seq {reading.seq!r} is negative"
    if reading.seq > MAX_SEQ:
        return f"seq {reading.seq} is above {MAX_SEQ}"
    if type(reading.observed_at) is not datetime or reading.observed_at.utcoffset() is None:
        return "observed_at is not a timezone-aware datetime"
    if not YEARS[0] <= reading.observed_at.year < YEARS[1]:
        return f"observed_at {reading.observed_at.isoformat()} is outside {YEARS[0]}..{YEARS[1]}"
    if type(reading.schema_version) is not int or not 0 < reading.schema_version <= MAX_SCHEMA_VERSION:
        return f"schema_version {reading.schema_version!r} outside 1..{MAX_SCHEMA_VERSION}"
    for name, low, high in (("temperature_c", -60.0, 100.0), ("humidity_pct", 0.0, 100.0), ("battery_pct", 0.0, 100.0)):
        value = getattr(reading, name)
        if type(value) not in (float, int):
            return f"{name} {value!r} is not a number"
        if not low <= value <= high:
            return f"{name} {value!r} outside {low:g}..{high:g}"
    if type(reading.smoke_alarm) is not bool or type(reading.water_leak) is not bool:
        return "smoke_alarm and water_leak must be booleans"
    return "implausible reading"
