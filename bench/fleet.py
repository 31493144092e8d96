"""The simulated device fleet: an open-loop schedule of readings.

Every device fires on its own grid -- ``start + phase + k * interval`` plus a
uniform jitter of +-``jitter * interval`` -- so a slow send never moves the
schedule: each reading carries the time it was *meant* to be sent
(``observed_at``), and the runner measures how late it actually went out (send
delay). A grid with jitter under half an interval keeps each device's readings in
order. Time compression is just a shorter interval: 100,000 devices at 60 s is
1,667 events/s, at 0.6 s it is 166,667 events/s.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

from iotbench.telemetry import DeviceState, Reading

__all__ = ["FleetConfig", "Fleet"]


@dataclass(frozen=True)
class FleetConfig:
    """``FleetConfig(devices=100_000, interval_s=60.0)``: the Fabrikam contract rate."""

    devices: int
    interval_s: float = 60.0
    jitter: float = 0.1  # fraction of the interval, each way
    start_spread_s: float | None = None  # phases spread over this; None = one interval
    seed: int = 1

    @property
    def target_eps(self) -> float:
        return self.devices / self.interval_s


class Fleet:
    """Readings due by a given wall-clock time, in intended-time order.

    >>> fleet = Fleet(FleetConfig(devices=10, interval_s=1.0), start=0.0, end=5.0)
    >>> due = fleet.due(5.0)
    >>> len(due) == fleet.scheduled
    True
    """

    def __init__(self, config: FleetConfig, *, start: float, end: float) -> None:
        self.config = config
        self.end = end
        rng = random.Random(config.seed)
        self._rng = rng
        spread = config.interval_s if config.start_spread_s is None else config.start_spread_s
        self.devices = [DeviceState(i, random.Random(rng.getrandbits(64))) for i in range(config.devices)]
        self._base = [start + rng.uniform(0.0, spread) for _ in range(config.devices)]
        self._heap: list[tuple[float, int]] = []
        for i, base in enumerate(self._base):
            first = max(start, self._jittered(base))  # jitter never fires before the start
            if first < end:
                self._heap.append((first, i))
        heapq.heapify(self._heap)
        self.scheduled = 0

    def _jittered(self, grid_time: float) -> float:
        j = self.config.jitter * self.config.interval_s
        return grid_time + self._rng.uniform(-j, j) if j else grid_time

    def next_due(self) -> float | None:
        """The intended time of the next reading, or None when the schedule is over."""
        return self._heap[0][0] if self._heap else None

    def due(self, now: float) -> list[tuple[float, int, Reading]]:
        """(intended time, device index, reading) for every reading due by ``now``, oldest first."""
        heap, devices, out = self._heap, self.devices, []
        interval, end = self.config.interval_s, self.end
        while heap and heap[0][0] <= now:
            intended, i = heap[0]
            device = devices[i]
            out.append((intended, i, device.next(intended)))
            following = self._jittered(self._base[i] + (device.seq) * interval)
            if following < end:
                heapq.heapreplace(heap, (following, i))
            else:
                heapq.heappop(heap)
        self.scheduled += len(out)
        return out
