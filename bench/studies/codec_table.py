"""The ``iotbench codecs`` table: what each codec costs in bytes and microseconds.

Sizes are taken on realistic readings from the seeded fleet generator (1,000
devices, one reading a minute: a batch of 100 holds 100 devices' readings of the
same minute, the way a gateway batches). Times are medians of repeated timing loops
over the same readings, per event; this is a quick table for choosing, and the
pytest-benchmark suite (``tests/benchmarks/test_codec_bench.py``) is the record.

The size functions are shared with that suite, so the table and the benchmark JSON
cannot disagree on what "bytes per event" means.
"""

from __future__ import annotations

import importlib.metadata
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from iotbench.codecs import CODECS
from iotbench.compression import get_compression
from iotbench.model.telemetry import Reading
from iotbench.registry import PluginUnavailable
from iotbench.studies.codec_overhead import overhead_rows
from iotbench.studies.samples import BATCH, sample_readings

__all__ = ["CodecRow", "codec_rows", "library_version", "payload_sizes", "time_per_call"]


def library_version(codec: Any) -> str:
    """'msgspec 0.19.0', 'json (Python 3.11.2)' for the standard library, '' when the codec names none."""
    if not codec.library:  # optional in the contract (iotbench.codecs.base.OPTIONAL)
        return ""
    try:
        return f"{codec.library} {importlib.metadata.version(codec.library)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{codec.library} (Python {platform.python_version()})"


def payload_sizes(codec: Any, readings: Sequence[Reading], compression: str = "zstd") -> dict[str, float]:
    """Bytes per event: single, in a batch of ``BATCH``, and both after ``compression``.

    Averages over ``readings`` (whole batches only), because sizes vary with the
    digits a reading happens to have.
    """
    compress = get_compression(compression).compress
    singles = [codec.encode(r) for r in readings]
    batches = [codec.encode_batch(readings[i : i + BATCH]) for i in range(0, len(readings) - BATCH + 1, BATCH)]
    per_batch = len(batches) * BATCH
    return {
        "bytes_single": sum(map(len, singles)) / len(singles),
        "bytes_per_event_batch": sum(map(len, batches)) / per_batch,
        "compressed_bytes_single": sum(len(compress(p)) for p in singles) / len(singles),
        "compressed_bytes_per_event_batch": sum(len(compress(p)) for p in batches) / per_batch,
    }


def time_per_call(
    call: Callable[[Any], Any], args: Sequence[Any], *, repeats: int = 7, budget_s: float = 0.005
) -> float:
    """Median seconds per call of ``call(arg)``, cycling through ``args``.

    Each repeat is the best of 3 runs of whole passes over ``args`` (about
    ``budget_s`` each); the median of the repeats is the figure. Both steps are there
    because the machine is shared: a neighbour's burst hits single runs, not all.
    """
    passes = 1
    while True:  # calibrate: enough passes to fill the budget
        started = time.perf_counter()
        for _ in range(passes):
            for arg in args:
                call(arg)
        took = time.perf_counter() - started
        if took >= budget_s or passes >= 1 << 16:
            break
        passes *= 2
    samples = []
    for _ in range(repeats):
        best = float("inf")
        for _ in range(3):  # the best of 3 drops the runs a neighbour interrupted
            started = time.perf_counter()
            for _ in range(passes):
                for arg in args:
                    call(arg)
            best = min(best, time.perf_counter() - started)
        samples.append(best / (passes * len(args)))
    return statistics.median(samples)


@dataclass(frozen=True)
class CodecRow:
    codec: str
    label: str
    library: str  # with version
    bytes_single: float
    bytes_per_event_batch: float
    compressed_bytes_single: float
    compressed_bytes_per_event_batch: float
    compression: str
    encode_us: float  # per event, single
    decode_us: float
    encode_batch_us: float  # per event, in a batch of BATCH
    decode_batch_us: float
    available: bool = True
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def codec_row(name: str, compression: str = "zstd", *, repeats: int = 7) -> CodecRow:
    """Sizes and median encode/decode times of one codec (``available=False`` when not installed)."""
    nan = float("nan")
    try:
        codec = CODECS.load(name)
    except PluginUnavailable as exc:
        return CodecRow(name, name, "", nan, nan, nan, nan, compression, nan, nan, nan, nan, False, str(exc))
    readings = sample_readings(1000)
    sizes: dict[str, Any] = payload_sizes(codec, readings, compression)
    singles = readings[:50]
    payloads = [codec.encode(r) for r in singles]
    batches = [readings[i : i + BATCH] for i in range(0, 300, BATCH)]
    batch_payloads = [codec.encode_batch(b) for b in batches]
    return CodecRow(
        name,
        codec.label,
        library_version(codec),
        **sizes,
        compression=compression,
        encode_us=time_per_call(codec.encode, singles, repeats=repeats) * 1e6,
        decode_us=time_per_call(codec.decode, payloads, repeats=repeats) * 1e6,
        encode_batch_us=time_per_call(codec.encode_batch, batches, repeats=repeats) * 1e6 / BATCH,
        decode_batch_us=time_per_call(codec.decode_batch, batch_payloads, repeats=repeats) * 1e6 / BATCH,
    )


def codec_rows(names: Sequence[str] | None = None, compression: str = "zstd", *, repeats: int = 7) -> list[CodecRow]:
    """One row per codec (all registered by default)."""
    return [codec_row(n, compression, repeats=repeats) for n in (names or CODECS.names())]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if value != value else f"{value:,.1f}" if value >= 10 else f"{value:.2f}"
    return str(value)


def render(title: str, rows: Sequence[dict[str, Any]], columns: dict[str, str]) -> Any:
    """A rich Table of ``rows`` (dicts); ``columns`` maps keys to headers. One renderer for the codec tables."""
    from rich.table import Table

    table = Table(title=title)
    for header in columns.values():
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row[c]) for c in columns))
    return table


_SIZE_COLUMNS = {
    "codec": "codec",
    "library": "library",
    "bytes_single": "B single",
    "bytes_per_event_batch": f"B/ev batch {BATCH}",
    "compressed_bytes_single": "B single (C)",
    "compressed_bytes_per_event_batch": f"B/ev batch {BATCH} (C)",
    "encode_us": "enc us",
    "decode_us": "dec us",
    "encode_batch_us": "enc us/ev batch",
    "decode_batch_us": "dec us/ev batch",
}


def command(
    names: Sequence[str],
    *,
    compression: str = "zstd",
    evolution: bool = False,
    overhead: bool = False,
    as_json: bool = False,
) -> int:
    """``iotbench codecs [NAMES] [--compression C] [--evolution] [--overhead] [--json]``."""
    import dataclasses
    import json
    import sys

    from rich.console import Console

    from iotbench.registry import UnknownPlugin

    try:
        for name in names:
            CODECS.plugin(name)
        get_compression(compression)
    except (UnknownPlugin, LookupError) as exc:
        print(f"iotbench: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    if evolution:
        from iotbench.studies.evolution import SUMMARY, evolution_table

        title, rows = f"Schema evolution: {SUMMARY}", [dataclasses.asdict(r) for r in evolution_table(names or None)]
        columns = {k: k for k in ("codec", "direction", "framing", "outcome", "detail")}
    elif overhead:
        title = f"Plugin vs direct library call, same events (the bar: speed ratio >= 0.9 in a batch of {BATCH})"
        rows = [dataclasses.asdict(r) for r in overhead_rows(names or None)]
        columns = {
            "codec": "codec",
            "op": "op",
            "direct_ns": "direct ns",
            "plugin_ns": "plugin ns",
            "ratio": "plugin/direct speed",
            "gated": "gated",
        }
    else:
        title = (
            f"Codecs: bytes per event (single, batch of {BATCH}; (C) = {compression}-compressed) and "
            "median microseconds per event"
        )
        rows = [r.as_dict() for r in codec_rows(names or None, compression)]
        columns = {k: v.replace("(C)", f"({compression})") for k, v in _SIZE_COLUMNS.items()}
    if as_json:
        for row in rows:
            print(json.dumps(row))
    else:
        Console(width=200).print(render(title, rows, columns))
    return 0
