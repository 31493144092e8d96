"""Each real transport's highest sustained events/s on this machine, in one run: the README table.

For every transport variant and batch size, ``search_rate`` offers rising rates (devices =
rate, one reading per second each) on one connection until a rate is not sustained: less
than 95 % stored, any loss, or a send delay p99 over ``MAX_SEND_DELAY_P99_MS`` (iotbench.model.sustain) (the harness
falling behind its own schedule). Every variant uses the same codec (``msgpack-array``, the
cheapest, so the transport's cost shows) and the same criterion, so the rows compare.

The harness, its servers (separate processes) and the consumer share this machine's cores;
the figure is what one Python harness process drives through each protocol, not the
server's capacity.

Run: ``python -m iotbench.studies.transport_rates [OUT_DIR]`` (about 15 minutes; prints Markdown).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iotbench.model.results import CellResult
from iotbench.model.spec import parse_spec
from iotbench.model.sustain import MAX_SEND_DELAY_P99_MS
from iotbench.studies.ratesearch import search_rate, sustained

__all__ = ["VARIANTS", "RATES", "Variant", "measure"]

CODEC = "msgpack-array"
RATES = {
    1: [2_500, 5_000, 7_500, 10_000, 12_500, 15_000, 20_000, 25_000, 30_000],
    100: [20_000, 40_000, 60_000, 80_000, 100_000, 120_000, 140_000],
}


@dataclass(frozen=True)
class Variant:
    label: str
    transport: str
    options: dict[str, Any] = field(default_factory=dict)
    batches: tuple[int, ...] = (1, 100)


VARIANTS = (
    Variant("MQTT 3.1.1 QoS 1 (mosquitto)", "mqtt", {"qos": 1}),
    Variant("MQTT 3.1.1 QoS 0 (mosquitto)", "mqtt", {"qos": 0}),
    Variant("AMQP 1.0 unsettled (RabbitMQ)", "amqp", {"settled": False}),
    Variant("HTTP/1.1 keep-alive (uvicorn)", "http", {"mode": "keep-alive"}),
    Variant("HTTP/2 (granian)", "http", {"mode": "http2"}),
    Variant("Kafka acks=1 (Tansu)", "kafka", {"acks": 1}),
    Variant("in-process queue (the harness alone)", "inprocess", {}),
)


@dataclass(frozen=True)
class Row:
    variant: Variant
    batch: int
    best: float | None
    trials: list[CellResult]


def measure(variant: Variant, batch: int, folder: Path, rates: list[int] | None = None, duration_s: float = 8.0) -> Row:
    """The highest sustained rate of one variant at one batch size (None: not even the lowest)."""
    spec = parse_spec(
        {
            "codecs": [CODEC],
            "transports": [variant.transport],
            "batch": [batch],
            "duration_s": duration_s,
            "warmup_s": 2.0,
            "drain_timeout_s": 10.0,
            "transport_options": {variant.transport: dict(variant.options)},
        }
    )
    best, trials = search_rate(spec, spec.cells()[0], rates or RATES[batch], folder)
    return Row(variant, batch, best, trials)


def _stopped_by(trials: list[CellResult]) -> str:
    last = trials[-1]
    if sustained(last):
        return "every offered rate was sustained"
    if last.status != "ok":
        return f"failed: {(last.error or '')[:60]}"
    delay = last.latency_ms["send_delay"].get("p99") or 0.0
    return (
        f"at {last.target_eps:,.0f}/s: {last.throughput_eps:,.0f} stored/s, lost {last.events_lost}, "
        f"send delay p99 {delay:,.0f} ms"
    )


def _best(row: Row) -> str:
    rates = RATES[row.batch]
    if row.best is None:
        return f"< {rates[0]:,}"
    return f">= {row.best:,.0f}" if row.best == rates[-1] else f"{row.best:,.0f}"


def main() -> None:
    from iotbench.machine import machine_info

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="iotbench-rates-"))
    started, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0]
    rows: list[Row] = []
    for variant in VARIANTS:
        for batch in variant.batches:
            row = measure(variant, batch, out / f"{variant.transport}-{len(rows)}-b{batch}")
            rows.append(row)
            print(f"{variant.label}, batch {batch}: {row.best} ({_stopped_by(row.trials)})", file=sys.stderr)
    print(f"machine: {machine_info()}; {started}; load average before/after {load:.1f}/{os.getloadavg()[0]:.1f}")
    print(
        f"codec {CODEC}, one connection, 8 s cells after 2 s warm-up; sustained = >= 95 % stored, "
        f"nothing lost, send delay p99 <= {MAX_SEND_DELAY_P99_MS:g} ms\n"
    )
    print("| transport | batch | highest sustained events/s | the next step up |")
    print("| --- | ---: | ---: | --- |")
    for row in rows:
        print(f"| {row.variant.label} | {row.batch} | {_best(row)} | {_stopped_by(row.trials)} |")


if __name__ == "__main__":
    main()
