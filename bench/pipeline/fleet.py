"""The simulated device fleet: an open-loop schedule of readings.

Every device fires on its own grid -- ``start + phase + k * interval`` plus a
uniform jitter of +-``jitter * interval`` -- so a slow send never moves the
schedule: each reading carries the time it was *meant* to be sent
(``observed_at``), and the runner measures how late it actually went out (send
delay). A grid with jitter under half an interval keeps each device's readings in
order. Time compression is just a shorter interval: 100,000 devices at 60 s is
1,667 events/s, at 0.6 s it is 166,667 events/s.

The schedule and the readings are made with array operations, a time window at a time:
every random draw (a grid point's jitter, a reading's steps) is a hash of (seed, device,
grid point), so a reading's time and values are the same however the schedule is read --
in one call or in 10 ms steps, in one process or sharded over several. Made one reading at
a time in Python, the schedule and the readings cost 3.1 us a reading at 250,000 devices;
as arrays ~1 us (measured, issue 10), most of it building the ``Reading`` objects the
codecs take.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from iotbench.model.telemetry import Reading, device_id
from iotbench.pipeline.accounting import SeqLedger

__all__ = ["FleetConfig", "Fleet", "Due"]

WINDOW_READINGS = 65_536  # readings laid out at a time, at least one interval's worth
# Readings are made at least this many at a time, ahead of when they are due: a call into the
# array code costs ~40 us whatever its size, and a fleet read a reading at a time (a low rate:
# the sending side wakes for each) spent all of its time there.
MADE_AHEAD = 256


@dataclass(frozen=True)
class FleetConfig:
    """``FleetConfig(devices=100_000, interval_s=60.0)``: the Fabrikam contract rate."""

    devices: int
    interval_s: float = 60.0
    jitter: float = 0.1  # fraction of the interval, each way
    start_spread_s: float | None = None  # phases spread over this; None = one interval
    seed: int = 1
    id_prefix: str = ""  # the run's id: device ids unique to the run (see telemetry.device_id)
    # this fleet is shard ``shard`` of ``shards``: devices shard, shard + shards, ... (one sending
    # process's share); every draw is a hash of (seed, device, grid point), so a device's readings
    # are the same whichever shard holds it
    shard: int = 0
    shards: int = 1

    @property
    def target_eps(self) -> float:
        return self.devices / self.interval_s


# streams of the counter-based generator: one hash input per (what, device, grid point)
_JITTER, _PHASE, _TEMPERATURE, _HUMIDITY, _ALARM, _START = range(6)
_M1, _M2, _M3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_M4 = np.uint64(0xD1B54A32D192ED03)


def _uniform(key: int, stream: int, devices: np.ndarray, points: np.ndarray | int) -> np.ndarray:
    """Uniform [0, 1) draws, one per (device, grid point): splitmix64 of the three, vectorised."""
    x = (np.asarray(devices, dtype=np.uint64) * _M1) ^ (np.asarray(points, dtype=np.uint64) * _M4)
    x = x + np.uint64((key * 6 + stream) & 0xFFFFFFFFFFFFFFFF)
    x = (x ^ (x >> np.uint64(30))) * _M2
    x = (x ^ (x >> np.uint64(27))) * _M3
    x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


@dataclass
class Due:
    """Readings due, as columns: intended times, device positions (in this fleet), readings.

    Columns, not a tuple per reading: the sending side takes 250,000 a second on one core.
    Iterating gives ``(intended, position, reading)``.
    """

    times: list[float] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.readings)

    def __iter__(self) -> Iterator[tuple[float, int, Reading]]:
        return zip(self.times, self.positions, self.readings)


class Fleet:
    """Readings due by a given wall-clock time, in intended-time order.

    >>> fleet = Fleet(FleetConfig(devices=10, interval_s=1.0))
    >>> fleet.schedule(start=0.0, end=5.0)
    >>> due = fleet.due(5.0)
    >>> len(due) == fleet.scheduled
    True
    """

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self._key = config.seed
        # global device numbers: they name the device, seed its draws and pick its connection
        self.numbers = np.arange(config.shard, config.devices, config.shards, dtype=np.int64)
        self.ids = [device_id(int(i), config.id_prefix) for i in self.numbers]
        n = len(self.numbers)
        self._temperature = 18.0 + 6.0 * _uniform(self._key, _START, self.numbers, 3)
        self._humidity = 30.0 + 25.0 * _uniform(self._key, _START, self.numbers, 4)
        self._battery = 60.0 + 40.0 * _uniform(self._key, _START, self.numbers, 5)
        self._phase = _uniform(self._key, _PHASE, self.numbers, 0)
        self.sent = np.zeros(n, dtype=np.int64)  # readings handed out per device: its next seq
        self._first = np.zeros(n, dtype=np.int64)  # the grid point of each device's seq 0
        self._base = np.zeros(n)
        self.end = 0.0
        self.scheduled = 0
        self._window_end = 0.0
        self._window_s = 0.0
        # the laid-out window, sorted by time: times, device positions, grid points; and how far it was read
        self._times = np.empty(0)
        self._devices = np.empty(0, dtype=np.int64)
        self._points = np.empty(0, dtype=np.int64)
        self._pos = 0
        self._made = Due()  # readings made ahead, for window positions _pos, _pos + 1, ...

    # ---- the schedule ------------------------------------------------------------------

    def _time(self, devices: np.ndarray, points: np.ndarray) -> np.ndarray:
        """When ``devices`` (positions) fire at grid ``points``: grid point g is ``base + (g - 1) * interval``
        plus the jitter (point 0 is one interval before the phase, so a reading can start right at ``start``)."""
        interval, spread = self.config.interval_s, self.config.jitter * self.config.interval_s
        jitter = _uniform(self._key, _JITTER, self.numbers[devices], points) * 2.0 - 1.0
        return self._base[devices] + (points - 1) * interval + jitter * spread

    def schedule(self, *, start: float, end: float) -> None:
        """Lay the schedule out from ``start`` (wall clock) to ``end``; set-up cost is paid before."""
        config = self.config
        spread = config.interval_s if config.start_spread_s is None else config.start_spread_s
        n = len(self.numbers)
        self.end = end
        self._base = start + self._phase * spread
        # Each device's first reading is the first grid point whose jittered time is >= start: the
        # rate is the steady rate from the first second on, not a ramp over the jitter's width, and
        # nothing fires early. Jitter under half an interval makes point 2 always qualify.
        positions = np.arange(n)
        first = np.full(n, 2, dtype=np.int64)
        for point in (1, 0):
            fires = self._time(positions, np.full(n, point, dtype=np.int64)) >= start
            first[fires] = point
        self._first = first
        self.sent[:] = 0
        # a window holds about WINDOW_READINGS readings, and at least one interval
        rate = max(n / config.interval_s, 1e-9)
        self._window_s = max(WINDOW_READINGS / rate, config.interval_s)
        self._window_end = start
        self._times = np.empty(0)
        self._devices = np.empty(0, dtype=np.int64)
        self._points = np.empty(0, dtype=np.int64)
        self._pos = 0
        self._made = Due()

    def _lay_out(self) -> bool:
        """The next window's readings after what is left of this one; False once past ``end``."""
        low = self._window_end
        if low >= self.end:
            return False
        high = min(low + self._window_s, self.end)
        self._window_end = high
        interval, spread = self.config.interval_s, self.config.jitter * self.config.interval_s
        # the grid points that may land in [low, high): jitter moves a point at most `spread` either way
        lowest = np.maximum(np.ceil((low - self._base - spread) / interval) + 1, self._first).astype(np.int64)
        highest = np.floor((high - self._base + spread) / interval).astype(np.int64) + 1
        counts = np.maximum(highest - lowest + 1, 0)
        total = int(counts.sum())
        devices = np.repeat(np.arange(len(counts)), counts)
        offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        points = lowest[devices] + offsets
        times = self._time(devices, points)
        inside = (times >= low) & (times < high)
        times, devices, points = times[inside], devices[inside], points[inside]
        order = np.argsort(times, kind="stable")
        rest = slice(self._pos, None)
        self._times = np.concatenate((self._times[rest], times[order]))
        self._devices = np.concatenate((self._devices[rest], devices[order]))
        self._points = np.concatenate((self._points[rest], points[order]))
        self._pos = 0
        return True

    def next_due(self) -> float | None:
        """The intended time of the next reading, or None when the schedule is over."""
        while self._pos >= len(self._times):
            if not self._lay_out():
                return None
        return float(self._times[self._pos])

    def due(self, now: float, limit: int = 1 << 62) -> Due:
        """The readings due by ``now``, at most ``limit``, in intended-time order (a device's in its order)."""
        out = Due()
        while len(out) < limit:
            if self._pos >= len(self._times) and not self._lay_out():
                break
            stop = min(int(np.searchsorted(self._times, now, side="right")), self._pos + limit - len(out))
            if stop <= self._pos:
                break
            made, take = self._made, stop - self._pos
            if len(made) < take:
                ahead = self._pos + len(made)
                self._readings(ahead, min(len(self._times), max(stop, ahead + MADE_AHEAD)), made)
            out.times += made.times[:take]
            out.positions += made.positions[:take]
            out.readings += made.readings[:take]
            del made.times[:take], made.positions[:take], made.readings[:take]
            self._pos = stop
        self.scheduled += len(out)
        return out

    def ledger(self) -> SeqLedger:
        """Every (device, seq) handed out so far: seqs 0.. of each device, in its order."""
        one = b"\x01"
        return SeqLedger.from_marks({self.ids[p]: bytearray(one * int(n)) for p, n in enumerate(self.sent) if n})

    # ---- the readings ----------------------------------------------------------------------

    def _readings(self, begin: int, stop: int, out: Due) -> None:
        """The readings at window positions begin..stop into ``out``, each device's state moved on in its order."""
        devices, points = self._devices[begin:stop], self._points[begin:stop]
        numbers = self.numbers[devices]
        step_t = _uniform(self._key, _TEMPERATURE, numbers, points)
        step_h = _uniform(self._key, _HUMIDITY, numbers, points)
        alarm = _uniform(self._key, _ALARM, numbers, points)
        seqs = points - self._first[devices]
        temperature = np.empty(len(devices))
        humidity = np.empty(len(devices))
        battery = np.empty(len(devices))
        # A device twice in the range (a short interval, a long catch-up) walks twice, in order: one
        # pass per occurrence, each over devices that are distinct within it.
        for layer in _occurrences(devices):
            d = devices[layer]
            # mean-reverting walks: a room drifts, HVAC pulls it back
            t = self._temperature[d]
            t = t + 0.05 * (21.0 - t) + (step_t[layer] - 0.5) * 0.28
            h = self._humidity[d]
            h = np.clip(h + 0.05 * (42.0 - h) + (step_h[layer] - 0.5) * 1.0, 0.0, 100.0)
            b = self._battery[d]
            b = np.where(b > 0.001, b - 0.001, 0.0)
            self._temperature[d], self._humidity[d], self._battery[d] = t, h, b
            temperature[layer], humidity[layer], battery[layer] = t, h, b
            self.sent[d] = seqs[layer] + 1
        ids, times = self.ids, self._times[begin:stop].tolist()
        fromtimestamp, utc = datetime.fromtimestamp, UTC
        positions = devices.tolist()
        out.times += times
        out.positions += positions
        out.readings += [
            Reading(
                device_id=ids[position],
                seq=seq,
                observed_at=fromtimestamp(at, utc),
                temperature_c=temperature_c,
                humidity_pct=humidity_pct,
                smoke_alarm=smoke,
                water_leak=leak,
                battery_pct=battery_pct,
            )
            for at, position, seq, temperature_c, humidity_pct, smoke, leak, battery_pct in zip(
                times,
                positions,
                seqs.tolist(),
                # rounded the way sensors report (0.01 C, 0.1 %): floor(x * 100 + 0.5) / 100 is the
                # double nearest the 2-decimal value for these non-negative values
                (np.floor(temperature * 100.0 + 0.5) / 100.0).tolist(),
                (np.floor(humidity * 10.0 + 0.5) / 10.0).tolist(),
                (alarm < 1e-4).tolist(),
                ((alarm >= 1e-4) & (alarm < 2e-4)).tolist(),
                (np.floor(battery * 10.0 + 0.5) / 10.0).tolist(),
            )
        ]


def _occurrences(devices: np.ndarray) -> list[np.ndarray | slice]:
    """Index sets of ``devices``: first occurrences, second ones, ...; each set's devices are distinct."""
    if len(np.unique(devices)) == len(devices):
        return [slice(None)]
    order = np.argsort(devices, kind="stable")
    ordered = devices[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    rank = np.empty(len(devices), dtype=np.int64)
    rank[order] = np.arange(len(devices)) - np.repeat(starts, np.diff(np.r_[starts, len(devices)]))
    return [np.flatnonzero(rank == r) for r in range(int(rank.max()) + 1)]
