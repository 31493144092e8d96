"""What the scenario costs on Azure: throughput units, billed ingress, storage, device bandwidth.

The rules are Event Hubs' own (Standard tier, see /work/shared/FACTS.md and
learn.microsoft.com event-hubs-quotas / event-hubs-faq):

- a throughput unit (TU) takes 1 MB/s or 1,000 events/s of ingress, whichever
  comes first; the model counts every event of a batch against the 1,000 (the
  conservative reading), so batching does not lower the TU count;
- ingress is billed in 64 KB units: a 100-byte event is one unit, and so is a
  batch of 600 of them -- batching is what cuts the bill;
- one publication is at most 1 MB.

Prices change and differ by region, so they are a dated table that a spec's
``[prices]`` section overrides key by key; the report shows the date.

>>> s = Scenario(devices=100_000, interval_s=60, bytes_per_event=100)
>>> throughput_units(s.events_per_s, s.bytes_per_event)
2
>>> billed_ingress_units(s.events_per_month, 100, batch=1) == s.events_per_month
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = [
    "BILLING_UNIT_BYTES",
    "DEFAULT_PRICES",
    "MAX_PUBLICATION_BYTES",
    "TU_INGRESS_BYTES_PER_S",
    "TU_INGRESS_EVENTS_PER_S",
    "CostEstimate",
    "Prices",
    "Scenario",
    "billed_ingress_units",
    "estimate",
    "parse_prices",
    "throughput_units",
]

TU_INGRESS_EVENTS_PER_S = 1_000
TU_INGRESS_BYTES_PER_S = 1024 * 1024  # 1 MB/s
BILLING_UNIT_BYTES = 64 * 1024  # 64 KB
MAX_PUBLICATION_BYTES = 1024 * 1024  # Standard tier; Basic is 256 KB
AMQP_CONNECTIONS_PER_NAMESPACE = 5_000  # Standard tier
HOURS_PER_MONTH = 730  # Azure's pricing calculator month
DAYS_PER_MONTH = 30  # the scenario month: 100,000 devices x 1/min x 30 days = 4.32 billion events


@dataclass(frozen=True)
class Prices:
    """Pay-as-you-go list prices; edit them in a spec's ``[prices]`` table."""

    date: str = "2024-06-01"
    currency: str = "USD"
    region: str = "East US"
    source: str = "azure.microsoft.com/pricing/details/event-hubs and .../storage/blobs (list prices; check before use)"
    eventhubs_tu_hour: float = 0.03  # Standard tier, per throughput unit per hour
    eventhubs_ingress_per_million: float = 0.028  # per million 64 KB ingress units
    blob_hot_gb_month: float = 0.018  # Blob storage, hot, LRS, first 50 TB
    blob_cool_gb_month: float = 0.01  # Blob storage, cool, LRS
    cellular_per_mb: float = 0.0  # device data plan, per MB; 0 = not priced (plans vary too much)


DEFAULT_PRICES = Prices()


class PricesError(ValueError):
    """A ``[prices]`` table that cannot be used; the message names the key and the fix."""


def parse_prices(raw: Any) -> Prices:
    """Validate a ``[prices]`` table (every key optional) over the defaults."""
    if not isinstance(raw, dict):
        raise PricesError("spec key 'prices': is not a table; write a [prices] section")
    known = {f.name: f.type for f in fields(Prices)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise PricesError(f"spec key 'prices.{key}': unknown key; known: {', '.join(known)}")
        if known[key] == "str":
            if not isinstance(value, str):
                raise PricesError(f"spec key 'prices.{key}': {value!r} is not text; give a string")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise PricesError(f"spec key 'prices.{key}': {value!r} is not a price; give a number >= 0")
        else:
            value = float(value)
        values[key] = value
    if values and "date" not in values:
        raise PricesError("spec key 'prices.date': missing; say when the prices were looked up, e.g. \"2026-11-01\"")
    return replace(DEFAULT_PRICES, **values)


@dataclass(frozen=True)
class Scenario:
    """A fleet: ``devices`` each sending one event every ``interval_s``, in sends of ``batch`` events."""

    devices: int = 100_000
    interval_s: float = 60.0
    bytes_per_event: float = 100.0
    batch: int = 1

    @property
    def events_per_s(self) -> float:
        return self.devices / self.interval_s

    @property
    def events_per_month(self) -> int:
        return round(self.devices * DAYS_PER_MONTH * 86_400 / self.interval_s)

    @property
    def events_per_device_month(self) -> float:
        return DAYS_PER_MONTH * 86_400 / self.interval_s


def throughput_units(events_per_s: float, bytes_per_event: float) -> int:
    """TUs needed for this ingress: the larger of the event-count and the byte limit (at least 1)."""
    by_events = math.ceil(events_per_s / TU_INGRESS_EVENTS_PER_S - 1e-9)
    by_bytes = math.ceil(events_per_s * bytes_per_event / TU_INGRESS_BYTES_PER_S - 1e-9)
    return max(1, by_events, by_bytes)


def billed_ingress_units(events: int, bytes_per_event: float, batch: int = 1) -> int:
    """64 KB ingress units for ``events`` sent ``batch`` at a time (full batches, then the rest)."""
    if batch < 1:
        raise ValueError(f"batch {batch}: give 1 or more events per send")
    if batch * bytes_per_event > MAX_PUBLICATION_BYTES:
        raise ValueError(
            f"a batch of {batch} x {bytes_per_event:g} B is over Event Hubs' 1 MB per publication; use a smaller batch"
        )
    full, rest = divmod(events, batch)
    units = full * _units(batch * bytes_per_event)
    return units + (_units(rest * bytes_per_event) if rest else 0)


def _units(send_bytes: float) -> int:
    return max(1, math.ceil(send_bytes / BILLING_UNIT_BYTES))


@dataclass(frozen=True)
class CostEstimate:
    """One month of the scenario; money in ``prices.currency``."""

    throughput_units: int
    tu_cost: float
    ingress_units: int
    ingress_cost: float
    storage_gb: float
    storage_cost: float
    device_mb_month: float  # readings' payload plus ``connection_mb_month``
    device_cost_month: float
    connection_mb_month: float = 0.0  # of device_mb_month: the connection's own bytes (keep-alive, handshakes)

    @property
    def eventhubs_cost(self) -> float:
        return self.tu_cost + self.ingress_cost

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "eventhubs_cost": self.eventhubs_cost}


def estimate(
    scenario: Scenario,
    prices: Prices = DEFAULT_PRICES,
    stored_bytes_per_event: float | None = None,
    storage_tier: str = "hot",
    connection_mb_per_device_month: float = 0.0,
) -> CostEstimate:
    """The month's bill for ``scenario``; storage holds one month of events at ``stored_bytes_per_event``.

    Device bandwidth is the readings' payload plus ``connection_mb_per_device_month``: what the
    device's connection costs on its own -- keep-alive traffic of a connection held open, or a
    TCP + TLS + protocol handshake per reading of a device that sleeps -- as measured by
    ``python -m iotbench.studies.connection_cost`` (README "The connection's own cost"; 0: not
    counted). Per-reading framing and TLS records come on top (the report's wire bytes).

    >>> round(estimate(Scenario(), connection_mb_per_device_month=1.5).device_mb_month, 2)
    5.82
    """
    if connection_mb_per_device_month < 0:
        raise ValueError(f"connection_mb_per_device_month {connection_mb_per_device_month}: give 0 or more MB")
    tus = throughput_units(scenario.events_per_s, scenario.bytes_per_event)
    units = billed_ingress_units(scenario.events_per_month, scenario.bytes_per_event, scenario.batch)
    at_rest = scenario.bytes_per_event if stored_bytes_per_event is None else stored_bytes_per_event
    storage_gb = scenario.events_per_month * at_rest / 1e9
    gb_price = {"hot": prices.blob_hot_gb_month, "cool": prices.blob_cool_gb_month}[storage_tier]
    device_mb = scenario.events_per_device_month * scenario.bytes_per_event / 1e6 + connection_mb_per_device_month
    return CostEstimate(
        throughput_units=tus,
        tu_cost=tus * HOURS_PER_MONTH * prices.eventhubs_tu_hour,
        ingress_units=units,
        ingress_cost=units / 1e6 * prices.eventhubs_ingress_per_million,
        storage_gb=storage_gb,
        storage_cost=storage_gb * gb_price,
        device_mb_month=device_mb,
        device_cost_month=device_mb * prices.cellular_per_mb,
        connection_mb_month=connection_mb_per_device_month,
    )
