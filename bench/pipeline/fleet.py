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

from iotbench.model.telemetry import DeviceState, Reading, next_readings

__all__ = ["FleetConfig", "Fleet"]

SLOTS_PER_S = 1000.0


@dataclass(frozen=True)
class FleetConfig:
    """``FleetConfig(devices=100_000, interval_s=60.0)``: the Fabrikam contract rate."""

    devices: int
    interval_s: float = 60.0
    jitter: float = 0.1  # fraction of the interval, each way
    start_spread_s: float | None = None  # phases spread over this; None = one interval
    seed: int = 1
    id_prefix: str = ""  # the run's id: device ids unique to the run (see telemetry.device_id)

    @property
    def target_eps(self) -> float:
        return self.devices / self.interval_s


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
        rng = random.Random(config.seed)
        # One generator for the whole fleet's readings: the calendar hands devices out in a
        # deterministic order, so the readings are deterministic too (a Random per device
        # costs 5 us each to seed).
        self.devices = [DeviceState(i, rng, config.id_prefix) for i in range(config.devices)]
        # Phases in device order: devices due one after another then sit next to each other in
        # memory, and generating a reading touches warm memory (2.6 instead of 3.2 us a reading
        # at 100,000 devices, measured).
        self._phase = sorted(rng.random() for _ in range(config.devices))
        # The schedule's jitter has a generator of its own: each stream is drawn in the calendar's
        # order, so neither depends on how many readings a call to due() takes.
        self._rng = random.Random(rng.getrandbits(64))
        self._base: list[float] = []
        self._slots: dict[int, list[tuple[float, int]]] = {}
        self._slot_heap: list[int] = []
        self.end = 0.0
        self.scheduled = 0

    def schedule(self, *, start: float, end: float) -> None:
        """Lay the schedule out from ``start`` (wall clock) to ``end``; set-up cost is paid before."""
        spread = self.config.interval_s if self.config.start_spread_s is None else self.config.start_spread_s
        self.end = end
        self._base = [start + phase * spread for phase in self._phase]
        self._slots = {}
        self._slot_heap = []
        interval = self.config.interval_s
        for i, base in enumerate(self._base):
            # The first reading is the first grid point (from one interval back) whose
            # jittered time is >= start: the rate is the steady rate from the first
            # second on, not a ramp over the jitter's width, and nothing fires early.
            for grid in (base - interval, base, base + interval):
                first = self._jittered(grid)
                if first >= start:
                    break
            self._base[i] = grid
            if first < end:
                self._put(first, i)

    # A calendar queue: readings wait in 1 ms slots (a dict of lists) and only the
    # slot numbers are kept in a heap -- a heap of every reading cost 1 us per event
    # at 100,000 devices, a third of the generator's budget.

    def _put(self, when: float, index: int) -> None:
        slot = int(when * SLOTS_PER_S)
        bucket = self._slots.get(slot)
        if bucket is None:
            self._slots[slot] = [(when, index)]
            heapq.heappush(self._slot_heap, slot)
        else:
            bucket.append((when, index))

    def _jittered(self, grid_time: float) -> float:
        return grid_time + (self._rng.random() * 2.0 - 1.0) * self.config.jitter * self.config.interval_s

    def next_due(self) -> float | None:
        """The intended time of the next reading, or None when the schedule is over."""
        if not self._slot_heap:
            return None
        return min(when for when, _ in self._slots[self._slot_heap[0]])

    def due(self, now: float, limit: int = 1 << 62) -> list[tuple[float, int, Reading]]:
        """(intended time, device index, reading) for readings due by ``now``, at most ``limit``.

        Readings come slot by slot (1 ms); a device's readings always in its order.
        """
        out: list[tuple[float, int, Reading]] = []
        slots, slot_heap, devices, base = self._slots, self._slot_heap, self.devices, self._base
        interval, end = self.config.interval_s, self.end
        spread = 2.0 * self.config.jitter * interval
        rnd = self._rng.random
        slots_get, heappush = slots.get, heapq.heappush
        now_slot = int(now * SLOTS_PER_S) if now < 1e15 else 1 << 62  # "everything" (tests) is inf
        while slot_heap and slot_heap[0] <= now_slot and len(out) < limit:
            slot = slot_heap[0]
            bucket = slots[slot]
            if slot == now_slot:  # the current slot: only what is already due
                ready = [e for e in bucket if e[0] <= now]
                if not ready:
                    break
                if len(ready) < len(bucket):
                    slots[slot] = [e for e in bucket if e[0] > now]
                    bucket = ready
                else:
                    del slots[slot]
                    heapq.heappop(slot_heap)
            else:
                del slots[slot]
                heapq.heappop(slot_heap)
            room = limit - len(out)
            if len(bucket) > room:  # put the rest back, in the same slot
                rest, bucket = bucket[room:], bucket[:room]
                slots[slot] = rest + slots.get(slot, [])
                if slot_heap[:1] != [slot]:
                    heapq.heappush(slot_heap, slot)
            out += next_readings(devices, bucket)
            for _, i in bucket:  # each device's next reading, into its slot (_put, inlined: it runs per event)
                following = base[i] + devices[i].seq * interval + (rnd() - 0.5) * spread
                if following < end:
                    at = int(following * SLOTS_PER_S)
                    entries = slots_get(at)
                    if entries is None:
                        slots[at] = [(following, i)]
                        heappush(slot_heap, at)
                    else:
                        entries.append((following, i))
        self.scheduled += len(out)
        return out
