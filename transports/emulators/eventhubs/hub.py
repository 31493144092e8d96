"""The local endpoint's event hub: in-memory partitions and the service's ingress limits.

Both front doors (AMQP and the REST send API) append here, so both protocols land in
one hub, as in Azure. A partition numbers its events (sequence number from 0), gives
each a byte offset (the service's offsets are positions in the partition's log, as
strings) and an enqueued time, and wakes the readers waiting at its end.

Limits follow the service: a throughput unit admits 1,000 events/s or 1 MB/s of
ingress, whichever comes first; over that the service answers ServerBusy. The bucket
refills continuously and holds one second of allowance (the service meters per
second, so a one-second burst passes and a sustained excess is refused).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from iotbench.transports.emulators.eventhubs.amqp import StoredEvent, annotated

__all__ = ["Hub", "HubLimits", "Partition", "Refused", "Throttle"]

EVENTS_PER_TU = 1000
BYTES_PER_TU = 1024 * 1024


class Refused(Exception):
    """An append the service refuses: ``condition`` is the AMQP error symbol, ``status`` the HTTP one."""

    def __init__(self, condition: str, status: int, description: str) -> None:
        super().__init__(description)
        self.condition, self.status, self.description = condition, status, description


@dataclass(frozen=True)
class HubLimits:
    """``HubLimits(throughput_units=1)``; 0 means unlimited for every field."""

    throughput_units: float = 0
    max_message_bytes: int = 1024 * 1024  # Standard tier: 1 MB per publication (single event or batch)
    max_connections: int = 0


@dataclass
class Throttle:
    """A token bucket over events and bytes; ``admit`` says whether a publication fits now."""

    events_per_s: float
    bytes_per_s: float
    events: float = 0.0
    bytes: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.events, self.bytes = self.events_per_s, self.bytes_per_s

    def admit(self, events: int, size: int) -> bool:
        now = time.monotonic()
        elapsed, self.stamp = now - self.stamp, now
        self.events = min(self.events_per_s, self.events + elapsed * self.events_per_s)
        self.bytes = min(self.bytes_per_s, self.bytes + elapsed * self.bytes_per_s)
        if events > self.events or size > self.bytes:
            return False
        self.events -= events
        self.bytes -= size
        return True


class Partition:
    """One partition's log, readable from any position."""

    def __init__(self, hub: str, pid: str) -> None:
        self.hub, self.id = hub, pid
        self.events: list[StoredEvent] = []
        self.offsets: list[int] = []
        self.enqueued_ms: list[int] = []
        self.next_offset = 0
        self._grown = asyncio.Event()

    def append(self, events: Sequence[StoredEvent]) -> None:
        now_ms = int(time.time() * 1000)
        for event in events:
            self.events.append(event)
            self.offsets.append(self.next_offset)
            self.enqueued_ms.append(now_ms)
            self.next_offset += event.size
        self._grown.set()
        self._grown = asyncio.Event()

    async def wait_beyond(self, position: int) -> None:
        """Return once the log holds more than ``position`` events."""
        while len(self.events) <= position:
            await self._grown.wait()

    def delivery(self, position: int) -> bytes:
        """Event ``position`` as a consumer receives it, annotations added."""
        return annotated(self.events[position], position, self.offsets[position], self.enqueued_ms[position])

    def start_position(self, kind: str, operator: str, value: str) -> int:
        """The first position a receiver reads, from its filter (``x-opt-offset > '-1'``)."""
        inclusive = operator == ">="
        if kind == "offset":
            if value == "@latest":
                return len(self.events)
            number = int(value)
            if number < 0:
                return 0
            find = bisect.bisect_left if inclusive else bisect.bisect_right
            return find(self.offsets, number)
        if kind == "sequence-number":
            number = int(value)
            return max(0, number if inclusive else number + 1)
        if kind == "enqueued-time":
            find = bisect.bisect_left if inclusive else bisect.bisect_right
            return find(self.enqueued_ms, int(value))
        raise ValueError(f"unknown filter on x-opt-{kind}")

    def properties(self) -> dict[str, Any]:
        """What a ``com.microsoft:partition`` READ returns."""
        from azure.eventhub._pyamqp.types import TYPE, VALUE, AMQPTypes

        last = len(self.events) - 1
        return {
            "name": self.hub,
            "type": "com.microsoft:partition",
            "partition": self.id,
            "begin_sequence_number": {TYPE: AMQPTypes.long, VALUE: 0},
            "last_enqueued_sequence_number": {TYPE: AMQPTypes.long, VALUE: last},
            "last_enqueued_offset": str(self.offsets[-1] if self.offsets else -1),
            "last_enqueued_time_utc": {TYPE: AMQPTypes.long, VALUE: self.enqueued_ms[-1] if self.enqueued_ms else 0},
            "is_partition_empty": last < 0,
        }


class Hub:
    """``Hub("telemetry", partitions=4, limits=HubLimits(throughput_units=1))``."""

    def __init__(self, name: str, partitions: int = 4, limits: HubLimits = HubLimits()) -> None:
        self.name = name
        self.created_ms = int(time.time() * 1000)
        self.partitions = [Partition(name, str(i)) for i in range(partitions)]
        self.limits = limits
        tu = limits.throughput_units
        self.throttle = Throttle(EVENTS_PER_TU * tu, BYTES_PER_TU * tu) if tu > 0 else None
        self._round_robin = itertools.cycle(range(partitions))
        self.stats = {"events": 0, "publications": 0, "throttled": 0, "oversize": 0, "refused_connections": 0}

    def partition(self, pid: str) -> Partition:
        try:
            return self.partitions[int(pid)]
        except (ValueError, IndexError):
            raise Refused(
                "amqp:not-found",
                404,
                f"partition {pid!r} does not exist in {self.name} (0..{len(self.partitions) - 1})",
            ) from None

    def route(self, key: str | None) -> Partition:
        """The partition a key maps to (stable), or the next one round-robin without a key."""
        if key is None:
            return self.partitions[next(self._round_robin)]
        return self.partitions[zlib.crc32(key.encode()) % len(self.partitions)]

    def publish(self, events: Sequence[StoredEvent], size: int, *, partition: str | None, key: str | None) -> Partition:
        """Append one publication (a single event or a batch) atomically, or raise ``Refused``."""
        limit = self.limits.max_message_bytes
        if limit and size > limit:
            self.stats["oversize"] += 1
            raise Refused(
                "amqp:link:message-size-exceeded", 413, f"publication of {size} bytes exceeds the {limit}-byte limit"
            )
        if self.throttle is not None and not self.throttle.admit(len(events), size):
            self.stats["throttled"] += 1
            raise Refused(
                "com.microsoft:server-busy",
                503,
                f"ServerBusy: {self.limits.throughput_units:g} throughput unit(s) exceeded "
                f"({EVENTS_PER_TU * self.limits.throughput_units:g} events/s, "
                f"{BYTES_PER_TU * self.limits.throughput_units:g} bytes/s)",
            )
        target = self.partition(partition) if partition is not None else self.route(key)
        target.append(events)
        self.stats["events"] += len(events)
        self.stats["publications"] += 1
        return target

    def properties(self) -> dict[str, Any]:
        """What a ``com.microsoft:eventhub`` READ returns."""
        from azure.eventhub._pyamqp.types import TYPE, VALUE, AMQPTypes

        return {
            "name": self.name,
            "type": "com.microsoft:eventhub",
            "created_at": {TYPE: AMQPTypes.timestamp, VALUE: self.created_ms},
            "partition_count": {TYPE: AMQPTypes.int, VALUE: len(self.partitions)},
            "partition_ids": [p.id for p in self.partitions],
        }
