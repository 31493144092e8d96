"""What one iotbench process on this machine can run: the bounds a spec is checked against.

Every cell runs in this one process -- the fleet, the publisher, the consumer and both
ledgers -- so a spec's numbers are bounded by this machine's memory and by the rate one
Python process can drive. The figures below were measured on the README's machine
(2 cores, 24 GB, Python 3.11.7, 2026-11-29) with tracemalloc; ``iotbench.model.spec`` turns a
value beyond them into one line naming the key, the limit and why.

>>> cell_memory(devices=100_000, interval_s=60.0, batch=100, connections=1, warmup_s=5.0, duration_s=30.0,
...             max_inflight=1000, send_timeout_s=10.0, linger_ms=50.0)["devices"]
100000000
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from iotbench.model.telemetry import MAX_SEQ

if TYPE_CHECKING:
    from iotbench.model.spec import Cell, Spec

__all__ = [
    "BYTES_PER_DEVICE",
    "BYTES_PER_IN_FLIGHT_READING",
    "LEDGER_BYTES_PER_READING",
    "MAX_BATCH",
    "MAX_CELL_ID_BYTES",
    "MAX_CELL_RUNS",
    "MAX_CONNECTIONS",
    "MAX_MATRIX_S",
    "MAX_OFFERED_EPS",
    "RANGES",
    "Range",
    "Refusal",
    "cell_memory",
    "connection_limit",
    "machine_memory",
    "memory_budget",
    "number_ranges",
    "refusal",
    "shown_number",
]

# Per simulated device, for the whole cell: its id and state in the fleet's arrays, its share of
# the laid-out window, its rows in the sent ledger (taken from the fleet) and the receiving side's
# table, and both as SeqLedgers at the end: 688 B at the peak (tracemalloc over 100,000 devices
# with a run id in their ids, 3 readings each; issue 10), rounded up with room for longer cells.
BYTES_PER_DEVICE = 1_000
# Each ledger keeps one byte per (device, seq): a cell that runs long at a short interval
# grows by two bytes per reading.
LEDGER_BYTES_PER_READING = 2
# A reading held by an unacknowledged send: the Reading and its share of the payload
# (721 B: JSON at batch 1, the costliest measured; msgpack at batch 100 is 411 B) plus the
# send's asyncio task (1,175 B; one per reading at batch 1).
BYTES_PER_IN_FLIGHT_READING = 2_000
# One sending process drives ~300,000 events/s in-process at batch 100 (README, "The harness
# itself"); more than three times that is no benchmark on one machine, only the harness falling behind.
MAX_OFFERED_EPS = 1_000_000
# A batch is one publication: 100,000 readings are more than 1 MB even compressed (~10 B
# each at best), the most Event Hubs or a Kafka request takes in one.
MAX_BATCH = 100_000
# Twice Event Hubs Standard's 5,000 connections per namespace; each is a client with its
# own socket (two for Kafka: bootstrap and leader) in this one process.
MAX_CONNECTIONS = 10_000
SOCKETS_PER_CONNECTION = 2
RESERVED_FILES = 256  # servers' pipes, logs, the cold store, the interpreter's own files
# Cells run one after another, each with a server start and a drain: 10,000 runs of even a
# 1-second cell take hours; a week of measuring is a spec to split.
MAX_CELL_RUNS = 10_000
MAX_MATRIX_S = 7 * 86_400.0
DAY_S, HOUR_S = 86_400.0, 3_600.0


def machine_memory() -> int | None:
    """This machine's memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        try:
            import psutil
        except ImportError:
            return None
        return int(psutil.virtual_memory().total)


def memory_budget() -> float:
    """What one cell may take: half the machine -- the servers, the consumer's buffers and the OS share the rest."""
    total = machine_memory()
    return total / 2 if total else math.inf


def connection_limit() -> int:
    """Connections this process can open: its open-file limit (``ulimit -n``) less a reserve, two sockets each."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, ValueError, OSError):
        return MAX_CONNECTIONS
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, (soft - RESERVED_FILES) // SOCKETS_PER_CONNECTION))


def cell_memory(
    *,
    devices: int,
    interval_s: float,
    batch: int,
    connections: int,
    warmup_s: float,
    duration_s: float,
    max_inflight: int,
    send_timeout_s: float,
    linger_ms: float,
) -> dict[str, int]:
    """Bytes a cell holds at its peak, by the spec key that drives each part."""
    rate = devices / interval_s
    readings_per_device = math.ceil((warmup_s + duration_s) / interval_s) + 1
    # a send lives at most send_timeout_s, so at most that many seconds of readings are in
    # flight, however high max_inflight; an open batch holds at most linger_ms of them
    in_flight = min(max_inflight * batch, rate * send_timeout_s + batch)
    pending = min(connections * batch, rate * linger_ms / 1000.0 + connections)
    return {
        "devices": devices * BYTES_PER_DEVICE,
        "duration_s": devices * readings_per_device * LEDGER_BYTES_PER_READING,
        "max_inflight": math.ceil(in_flight + pending) * BYTES_PER_IN_FLIGHT_READING,
    }


# ---- the range of every number in a spec --------------------------------------------------


@dataclass(frozen=True)
class Range:
    """The values a number key may take, and why those (the sign is checked before: "is negative")."""

    low: float
    high: float
    why: str


# Every number a spec holds, declared once: its range and the reason for it. ``devices`` and
# ``connections`` follow from this machine (``number_ranges``).
RANGES: dict[str, Range] = {
    "batch": Range(
        1,
        MAX_BATCH,
        "a batch is one publication, and the 1 MB Event Hubs or a Kafka request "
        "takes holds ~100,000 readings at the ~10 B each the best compression gives",
    ),
    "interval_s": Range(0.001, DAY_S, "the fleet schedules readings in 1 ms slots; a cell measures at most a day"),
    "start_spread_s": Range(0, DAY_S, "a cell measures at most a day"),
    "duration_s": Range(0, DAY_S, "a cell measures at most a day; repeats make longer runs"),
    "warmup_s": Range(0, DAY_S, "a cell runs at most a day"),
    "repeats": Range(1, 1_000, "repeats run one after another, each a whole cell"),
    "seed": Range(
        0,
        2**53 - 1,
        "run.json keeps it and JSON readers hold integers exactly up to 2**53; "
        "a negative seed would repeat the positive one's readings",
    ),
    "linger_ms": Range(
        0,
        60_000,
        "a batch waits at most this long for more readings: a minute is past any "
        "ingest latency target (Kafka waits 5 ms by default)",
    ),
    "sending_processes": Range(
        1,
        256,
        "each sending process holds a share of the devices and a connection at least; 256 is past any machine's cores",
    ),
    "max_inflight": Range(1, 1_000_000, "each unacknowledged send is a task holding its readings, ~2 KB each"),
    "send_timeout_s": Range(0, HOUR_S, "latencies are recorded up to 1 h, the HdrHistograms' top"),
    "drain_timeout_s": Range(0, HOUR_S, "the wait for the last readings is bounded like a send"),
    **{
        f"rate_search.{key}": Range(
            0.01,
            MAX_OFFERED_EPS,
            f"one sending process drives ~300,000 events/s; above {MAX_OFFERED_EPS:,} a trial measures "
            "the harness falling behind",
        )
        for key in ("start_eps", "min_eps", "max_eps")
    },
    "rate_search.factor": Range(1.1, 10, "each step multiplies the offered rate: > 1 to climb, 10 a decade a step"),
    "rate_search.precision": Range(
        0.01,
        1,
        "the search ends when the first rate not kept up is within this fraction above the highest kept up; "
        "two runs of one cell here differ by ~5-10 %",
    ),
    "cold_store.roll_bytes": Range(
        65_536,
        1 << 30,
        "each file costs two fsyncs (~1 ms here): at the ~27 MB/s of "
        "JSON lines one process stores, smaller files are hundreds a "
        "second; larger ones only wait longer to be durable",
    ),
    "cold_store.roll_s": Range(
        0.01,
        HOUR_S,
        "each file costs two fsyncs (~1 ms here), and the consumer's checkpoint moves only when a file is durable",
    ),
}


def number_ranges() -> dict[str, Range]:
    """``RANGES`` plus the two that follow from this machine: devices (its memory), connections (its file limit)."""
    budget, total = memory_budget(), machine_memory()
    memory = (
        f"one process may take {budget / 1e9:.1f} GB, half of this machine's {total / 1e9:.1f} GB"
        if total
        else "this machine's memory is unknown"
    )
    return {
        **RANGES,
        "devices": Range(
            1,
            min(budget // BYTES_PER_DEVICE, 10**12),
            f"each simulated device takes ~1 KB for the whole cell, in the fleet and both ledgers; {memory}",
        ),
        "connections": Range(
            1,
            connection_limit(),
            f"each connection is a client with up to 2 sockets in this process (its open-file "
            f"limit, `ulimit -n`, allows it), and at most {MAX_CONNECTIONS:,}: twice Event Hubs "
            "Standard's 5,000 per namespace",
        ),
    }


# ---- a spec's whole matrix against this process -------------------------------------------

# a cell's folder is NNN-<cell id>-rR (runner._cell_folder): one file name, 255 bytes at most
MAX_CELL_ID_BYTES = 255 - len(f"{MAX_CELL_RUNS}--r999")


class Refusal(NamedTuple):
    """Why a spec cannot run here: the key to change, what is wrong (the value, the limit and
    why) and the fix -- ``iotbench.model.spec`` makes it a ``SpecError``."""

    key: str
    problem: str
    fix: str


def refusal(spec: Spec) -> Refusal | None:
    """Why this process cannot run ``spec``: too many cell runs, none at all, too long, or a
    cell whose rate, memory or folder name is beyond this machine. None when it can."""
    runs = _cell_runs(spec)
    if runs > MAX_CELL_RUNS:
        return Refusal(
            "repeats" if spec.repeats > 1 else "codecs",
            f"the matrix makes {runs:,} cell runs, above {MAX_CELL_RUNS:,} (cells run one after another, "
            "each with a server start and a drain)",
            "compare fewer values in one spec, or split it",
        )
    cells = spec.cells()
    if not cells:
        return Refusal(
            "exclude",
            f"the rules remove every cell of the matrix ({runs // spec.repeats:,} before them), so nothing would run",
            "drop or narrow a rule, or add values to the dimensions",
        )
    if spec.rate == "max":
        return _search(spec, cells)
    measuring = len(cells) * (spec.warmup_s + spec.duration_s)
    if measuring > MAX_MATRIX_S:
        return Refusal(
            "duration_s",
            f"{len(cells):,} cell runs x (warmup_s + duration_s) = "
            f"{measuring / HOUR_S:,.0f} h, above {MAX_MATRIX_S / HOUR_S:,.0f} h (cells run one after "
            "another in this process)",
            "shorten duration_s or run fewer cells per spec",
        )
    for devices, interval_s, batch, connections in sorted(
        {(c.devices, c.interval_s, c.batch, c.connections) for c in cells}
    ):
        refused = (
            _rate(devices, interval_s)
            or _readings(spec, interval_s)
            or _memory(spec, devices, interval_s, batch, connections)
        )
        if refused:
            return refused
    return next(filter(None, map(_folder_name, cells)), None)


# a search's trial folder is the cell's with "-sNN" (iotbench.pipeline.ramp)
SEARCH_FOLDER_SUFFIX = len("-s99")


def _search(spec: Spec, cells: list[Cell]) -> Refusal | None:
    """``rate = "max"``: every cell's trials, at the highest rate its search may offer, against this process."""
    search = spec.rate_search
    trials = sum(search.most_trials(c) for c in cells)
    if trials > MAX_CELL_RUNS:
        return Refusal(
            "rate_search",
            f"{len(cells):,} cell runs x up to {trials // len(cells):,} trials each make {trials:,} runs, above "
            f"{MAX_CELL_RUNS:,} (cells run one after another, each with a server start and a drain)",
            "search fewer cells per spec, or raise factor or precision",
        )
    measuring = trials * (spec.warmup_s + spec.duration_s)
    if measuring > MAX_MATRIX_S:
        return Refusal(
            "duration_s",
            f"up to {trials:,} trials x (warmup_s + duration_s) = {measuring / HOUR_S:,.0f} h, above "
            f"{MAX_MATRIX_S / HOUR_S:,.0f} h (trials run one after another in this process)",
            "shorten duration_s (a trial of 10 s tells a rate apart), or search fewer cells",
        )
    for cell in cells:
        top = search.bounds(cell)[2]
        interval = cell.devices / top
        refused = _readings(spec, interval) or _memory(spec, cell.devices, interval, cell.batch, cell.connections)
        if refused:
            return Refusal(
                "rate_search.max_eps",
                f"at {shown_number(round(top))} events/s ({cell.id}): {refused.problem}",
                f"lower rate_search.max_eps, or: {refused.fix}",
            )
        if len(cell.id.encode()) + SEARCH_FOLDER_SUFFIX > MAX_CELL_ID_BYTES:
            return _folder_name(cell, SEARCH_FOLDER_SUFFIX)
    return next(filter(None, map(_folder_name, cells)), None)


def _cell_runs(spec: Spec) -> int:
    """How many cell runs the matrix makes before exclusions, counted without listing them."""
    if spec.parts:
        return sum(_cell_runs(part) for part in spec.parts)
    variants = sum(
        math.prod(len(v) if isinstance(v, list) else 1 for v in spec.transport_options.get(t, {}).values())
        for t in spec.transports
    )
    others = (spec.codecs, spec.batch, spec.compression, spec.connections, spec.devices, spec.interval_s)
    return math.prod(len(d) for d in others) * variants * spec.repeats


def _rate(devices: int, interval_s: float) -> Refusal | None:
    rate = devices / interval_s
    if rate <= MAX_OFFERED_EPS:
        return None
    return Refusal(
        "interval_s",
        f"{shown_number(interval_s)} s for {devices:,} devices offers {rate:,.0f} events/s, "
        f"above {MAX_OFFERED_EPS:,} (one sending process drives ~300,000 events/s: README, 'The harness "
        "itself'; beyond that a cell measures the harness falling behind)",
        f"use interval_s >= {shown_number(devices / MAX_OFFERED_EPS)} for {devices:,} devices, or fewer devices",
    )


def _readings(spec: Spec, interval_s: float) -> Refusal | None:
    # the ledgers refuse a seq above MAX_SEQ (a hostile reading must not make them allocate)
    readings = math.ceil((spec.warmup_s + spec.duration_s) / interval_s) + 2
    if readings <= MAX_SEQ:
        return None
    return Refusal(
        "duration_s",
        f"(warmup_s + duration_s) / interval_s = {readings:,} readings per device, above "
        f"{MAX_SEQ:,} (the highest seq the ledgers take: one reading a second for 194 days)",
        f"shorten warmup_s + duration_s to at most {shown_number(int((MAX_SEQ - 2) * interval_s))} s, "
        "or lengthen interval_s",
    )


def _memory(spec: Spec, devices: int, interval_s: float, batch: int, connections: int) -> Refusal | None:
    parts = cell_memory(
        devices=devices,
        interval_s=interval_s,
        batch=batch,
        connections=connections,
        warmup_s=spec.warmup_s,
        duration_s=spec.duration_s,
        max_inflight=spec.max_inflight,
        send_timeout_s=spec.send_timeout_s,
        linger_ms=spec.linger_ms,
    )
    budget, total = memory_budget(), sum(parts.values())
    if total <= budget:
        return None
    key = max(parts, key=lambda k: parts[k])  # the part that takes the most names the key to change
    room = budget - (total - parts[key])  # what the other parts leave for it
    readings = math.ceil((spec.warmup_s + spec.duration_s) / interval_s) + 1
    fixes = {
        "devices": f"use at most {max(0, int(room // BYTES_PER_DEVICE)):,} devices in a cell",
        "duration_s": f"shorten warmup_s + duration_s to at most "
        f"{max(0.0, room / devices / LEDGER_BYTES_PER_READING - 1) * interval_s:,.0f} s, "
        "or lengthen interval_s",
        "max_inflight": f"lower max_inflight to at most {max(1, int(room // BYTES_PER_IN_FLIGHT_READING // batch)):,} "
        f"at batch {batch:,}, or shorten send_timeout_s",
    }
    return Refusal(
        key,
        f"a cell of {devices:,} devices at {shown_number(interval_s)} s, batch {batch:,}, needs "
        f"~{total / 1e9:,.1f} GB -- {parts['devices'] / 1e9:,.1f} GB for the devices (~1 KB each), "
        f"{parts['duration_s'] / 1e9:,.1f} GB for {readings:,} readings per device in the ledgers, "
        f"{parts['max_inflight'] / 1e9:,.1f} GB for readings in flight -- above the "
        f"{budget / 1e9:,.1f} GB one process may take (half of this machine's memory)",
        fixes[key],
    )


def _folder_name(cell: Cell, suffix: int = 0) -> Refusal | None:
    size = len(cell.id.encode()) + suffix
    if size <= MAX_CELL_ID_BYTES:
        return None
    return Refusal(
        f"transport_options.{cell.transport}",
        f"makes the cell id {size} bytes long, above the "
        f"{MAX_CELL_ID_BYTES} its folder's name can hold (255 bytes, with the cell's number)",
        "shorten the option values; an endpoint can come from the environment (IOTBENCH_<T>_URL)",
    )


def shown_number(value: float) -> str:
    """1,000,000 and 0.001 in a message, not 1000000.0 and 1e-03; 10**400 as ~10^400."""
    if isinstance(value, int) and abs(value) >= 10**18:
        return f"~10^{int(abs(value).bit_length() * math.log10(2))}"
    if isinstance(value, int) or (value == int(value) and abs(value) < 1e15):
        return f"{int(value):,}"
    return f"{value:g}"
