"""The benchmark spec: a TOML file naming the matrix and how each cell runs.

Validated on load: a bad spec raises ``SpecError`` with one line that names the key
and the fix, and the CLI turns it into exit code 2. Every combination of the
matrix dimensions is a ``Cell``; ``exclude`` drops combinations.

    codecs = ["json", "msgpack"]
    transports = ["inprocess"]
    batch = [1, 100]
    devices = 100000
    interval_s = 60
    duration_s = 30
    [transport_options.mqtt]
    qos = [0, 1]          # a list is one more dimension

``rate = "max"`` makes every cell a ramp instead of one run at its contract rate
(``iotbench.pipeline.ramp``), bounded by an optional ``[rate_search]`` table (``RateSearch``).
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import os
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from iotbench.codecs import CODECS
from iotbench.compression import COMPRESSIONS, compression_names
from iotbench.model.cost import DEFAULT_PRICES, Prices, PricesError, parse_prices
from iotbench.model.limits import (
    MAX_OFFERED_EPS,
    RANGES,
    number_ranges,
    refusal,
    shown_number,
)
from iotbench.model.spec_checks import (
    DIMENSIONS,
    SpecError,
    check_plugins,
    checked,
    exclusions,
    fail,
    option_variants,
    show,
    transport_options,
    typed,
)
from iotbench.transports import TRANSPORTS

__all__ = ["Cell", "RateSearch", "Spec", "SpecError", "load_spec", "parse_spec", "default_spec"]


@dataclass(frozen=True)
class Cell:
    """One combination of the matrix, run ``repeat`` (0-based)."""

    codec: str
    transport: str
    batch: int
    compression: str
    connections: int
    devices: int
    interval_s: float
    transport_options: tuple[tuple[str, Any], ...] = ()
    repeat: int = 0

    @property
    def id(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.transport_options)
        transport = f"{self.transport}[{opts}]" if opts else self.transport
        shape = f"b{self.batch}/{self.compression}/c{self.connections}/d{self.devices}@{self.interval_s:g}s"
        return f"{self.codec}/{transport}/{shape}"

    @property
    def target_eps(self) -> float:
        return self.devices / self.interval_s

    def at_rate(self, eps: float) -> Cell:
        """The same cell offering ``eps`` events/s: the same devices, each reporting every ``devices / eps`` s."""
        return dataclasses.replace(self, interval_s=self.devices / eps)


@dataclass(frozen=True)
class ColdStoreSpec:
    format: str = "jsonl.gz"
    roll_bytes: int = 4 * 1024 * 1024
    roll_s: float = 2.0


@dataclass(frozen=True)
class RateSearch:
    """How ``rate = "max"`` ramps a cell (``iotbench.pipeline.ramp``): from ``start_eps`` (None: the
    cell's contract rate) up by ``factor`` until a rate is not kept up (down by it while not even the
    start is), then halving the gap until the first rate not kept up is within ``precision`` above
    the highest kept up. Every rate stays within ``min_eps`` .. ``max_eps`` and keeps the cell's
    interval within 1 ms .. a day (``RANGES["interval_s"]``).

    The defaults suit the README's 2-core machine: factor 2 climbs from the contract rate (1,667/s)
    to the in-process ceiling (~300,000/s) in 8 steps, and 10 % is about the spread of one
    sustained figure between two runs there (300,000-325,000).
    """

    start_eps: float | None = None
    min_eps: float = 1.0
    max_eps: float = float(MAX_OFFERED_EPS)
    factor: float = 2.0
    precision: float = 0.1

    def bounds(self, cell: Cell) -> tuple[float, float, float]:
        """(start, lowest, highest) rate the search may offer ``cell``."""
        interval = RANGES["interval_s"]
        top = min(self.max_eps, cell.devices / interval.low)
        low = min(top, max(self.min_eps, cell.devices / interval.high))
        return min(top, max(low, self.start_eps or cell.target_eps)), low, top

    def most_trials(self, cell: Cell) -> int:
        """The most trials a search of ``cell`` runs: the start, a climb or a descent, the refinement."""
        start, low, top = self.bounds(cell)
        steps = math.ceil(math.log(max(top / start, start / low)) / math.log(self.factor) - 1e-9)
        halvings = math.ceil(math.log2(math.log(self.factor) / math.log1p(self.precision)))
        return 1 + steps + max(0, halvings) + 1  # + 1: rates are rounded to 3 digits, a gap may halve short


RATES = ("contract", "max")


@dataclass(frozen=True)
class Spec:
    codecs: tuple[str, ...]
    transports: tuple[str, ...]
    batch: tuple[int, ...] = (1,)
    compression: tuple[str, ...] = ("none",)
    connections: tuple[int, ...] = (1,)
    devices: tuple[int, ...] = (1000,)
    interval_s: tuple[float, ...] = (60.0,)
    jitter: float = 0.1
    start_spread_s: float | None = None
    duration_s: float = 30.0
    warmup_s: float = 5.0
    repeats: int = 1
    seed: int = 1
    linger_ms: float = 50.0
    max_inflight: int = 1000
    # the sending side's OS processes, each with a share of the devices and connections
    # (device i and connection k go to process i % n and k % n), and the CPUs they are pinned to
    # (empty: not pinned) -- a figure "on one core" pins its sending side here
    sending_processes: int = 1
    sending_cpus: tuple[int, ...] = ()
    send_timeout_s: float = 10.0
    drain_timeout_s: float = 15.0
    name: str = "iotbench"
    exclude: tuple[dict[str, Any], ...] = ()
    transport_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    cold_store: ColdStoreSpec = ColdStoreSpec()
    prices: Prices = DEFAULT_PRICES  # dated Azure prices for the report's cost section
    rate: str = "contract"  # "contract": one run at devices / interval_s; "max": a ramp per cell (rate_search)
    rate_search: RateSearch = RateSearch()
    parts: tuple[Spec, ...] = ()  # [[matrix]] tables: the cells are the union of theirs

    def cells(self) -> list[Cell]:
        if self.parts:
            return list(dict.fromkeys(c for part in self.parts for c in part.cells()))
        out: list[Cell] = []
        for codec, transport, batch, comp, conns, devices, interval in itertools.product(
            self.codecs, self.transports, self.batch, self.compression, self.connections, self.devices, self.interval_s
        ):
            for options in option_variants(self.transport_options.get(transport, {})):
                cell = Cell(codec, transport, batch, comp, conns, devices, interval, options)
                if not any(_matches(cell, rule) for rule in self.exclude):
                    out.extend(_replace_repeat(cell, r) for r in range(self.repeats))
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _replace_repeat(cell: Cell, repeat: int) -> Cell:
    return Cell(**{**asdict(cell), "transport_options": cell.transport_options, "repeat": repeat})


def _matches(cell: Cell, rule: dict[str, Any]) -> bool:
    options = dict(cell.transport_options)
    return all((options.get(k) if k not in DIMENSIONS else getattr(cell, k)) == v for k, v in rule.items())


# ---- validation -----------------------------------------------------------------

_LISTS = {
    "codecs": str,
    "transports": str,
    "batch": int,
    "compression": str,
    "connections": int,
    "devices": int,
    "interval_s": float,
}
_SCALARS = {
    "jitter": float,
    "start_spread_s": float,
    "duration_s": float,
    "warmup_s": float,
    "repeats": int,
    "seed": int,
    "linger_ms": float,
    "max_inflight": int,
    "sending_processes": int,
    "send_timeout_s": float,
    "drain_timeout_s": float,
    "name": str,
}
_TABLES = {"exclude", "transport_options", "cold_store", "prices", "rate_search"}
_KNOWN = sorted({*_LISTS, *_SCALARS, *_TABLES, "matrix", "sending_cpus", "rate"})
_PART_KEYS = sorted({*_LISTS, "exclude", "transport_options", "repeats"})  # repeats: per matrix table too
_MAX_NAME = 200  # the report's title


def parse_spec(raw: dict[str, Any]) -> Spec:
    """A validated Spec from a TOML document's dict: every value typed and in range, every
    transport option accepted by its transport, every cell runnable in this process.

    ``[[matrix]]`` tables (optional) each override the dimensions of the top level; the
    cells are the union of theirs -- "every codec on one transport, plus two codecs on
    every transport" without the full cross product.
    """
    if not isinstance(raw, dict):
        raise SpecError(f"spec: {show(raw)} is not a table of keys; write key = value lines")
    spec = _with_parts(raw) if "matrix" in raw else _parse(raw)
    refused = refusal(spec)  # the whole matrix against this process; nothing has started yet
    if refused is not None:
        raise fail(*refused)
    return spec


def _parse(raw: dict[str, Any]) -> Spec:
    for key in raw:
        if key not in _KNOWN:
            close = difflib.get_close_matches(key, _KNOWN, n=1) if isinstance(key, str) else []
            raise fail(
                str(key), "unknown key", f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(_KNOWN)}"
            )
    values = _values(raw)
    values.setdefault("codecs", ("json", "msgpack"))
    values.setdefault("transports", ("inprocess",))
    check_plugins("codecs", values["codecs"], CODECS)
    check_plugins("transports", values["transports"], TRANSPORTS)
    for comp in values.get("compression", ()):
        if comp not in compression_names():
            raise fail("compression", f"unknown compression {comp!r}", f"use one of {', '.join(compression_names())}")
        usable, why = COMPRESSIONS.status(comp)
        if not usable:
            raise fail("compression", why, "install it, or drop it from the spec")
    values["transport_options"] = transport_options(raw.get("transport_options", {}), values["transports"])
    values["exclude"] = exclusions(raw.get("exclude", []), values["transport_options"])
    values["cold_store"] = _cold_store(raw.get("cold_store", {}))
    values["prices"] = _prices(raw.get("prices", {}))
    values["rate"] = _rate(raw.get("rate", "contract"))
    values["rate_search"] = _rate_search(raw.get("rate_search"), values["rate"])
    return Spec(**values)


def _values(raw: dict[str, Any]) -> dict[str, Any]:
    """The dimensions and scalars, each typed and in its range."""
    ranges = number_ranges()
    values: dict[str, Any] = {}
    for key, registry in (("codecs", CODECS), ("transports", TRANSPORTS)):
        if raw.get(key) == "all":  # every one that can run on this machine
            raw = {**raw, key: [n for n in registry.names() if registry.status(n)[0]]}
    for key, kind in _LISTS.items():
        if key in raw:
            items = raw[key] if isinstance(raw[key], list) else [raw[key]]
            if not items:
                raise fail(key, "is empty", "name at least one value")
            values[key] = tuple(checked(key, v, kind, ranges) for v in items)
    for key, kind in _SCALARS.items():
        if key in raw:
            values[key] = checked(key, raw[key], kind, ranges)
    if not 0 <= values.get("jitter", 0.1) < 0.5:  # under half an interval keeps a device's readings in order
        raise fail("jitter", f"{values['jitter']!r} is outside 0..0.5", "give a fraction of the interval, e.g. 0.1")
    if "seed" in values and values["seed"] + values.get("repeats", 1) - 1 > ranges["seed"].high:
        raise fail(
            "seed",
            f"{shown_number(values['seed'])} + repeats is above {shown_number(ranges['seed'].high)} "
            f"({ranges['seed'].why})",
            "give a smaller seed",
        )
    if "sending_cpus" in raw:
        values["sending_cpus"] = _cpus(raw["sending_cpus"])
    processes = values.get("sending_processes", 1)
    for key in ("connections", "devices"):
        fewest = min(values.get(key, (1000 if key == "devices" else 1,)))
        if processes > fewest:
            raise fail(
                "sending_processes",
                f"{processes} processes for {fewest} {key} (each process needs one at least)",
                f"give sending_processes <= {fewest}, or more {key}",
            )
    if len(values.get("name", "")) > _MAX_NAME:
        raise fail(
            "name",
            f"is {len(values['name']):,} characters, above {_MAX_NAME} (the report's title)",
            "give a shorter name",
        )
    return values


def _cpus(raw: Any) -> tuple[int, ...]:
    """CPU numbers this process may run on (``os.sched_getaffinity``), none twice."""
    usable = sorted(os.sched_getaffinity(0))
    shown = ", ".join(map(str, usable))
    items = raw if isinstance(raw, list) else [raw]
    cpus = tuple(typed("sending_cpus", v, int) for v in items)
    for cpu in cpus:
        if cpu not in usable:
            raise fail("sending_cpus", f"CPU {shown_number(cpu)} is not one this process may use ({shown})",
                        f"give CPUs from {shown}, or [] for no pinning")  # fmt: skip
    if len(set(cpus)) < len(cpus):
        raise fail("sending_cpus", f"{show(raw)} names a CPU twice", "name each CPU once")
    return cpus


def _with_parts(raw: dict[str, Any]) -> Spec:
    tables = raw["matrix"]
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise fail("matrix", "is not a list of tables", "write [[matrix]] sections with dimension keys")
    base = {k: v for k, v in raw.items() if k != "matrix"}
    parts = []
    for n, table in enumerate(tables):
        for key in table:
            if key not in _PART_KEYS:
                raise fail(
                    f"matrix[{n}].{key}",
                    "cannot differ between matrix tables",
                    f"use {', '.join(_PART_KEYS)} there, and set the rest at the top level",
                )
        parts.append(_parse({**base, **table}))
    return dataclasses.replace(_parse(base), parts=tuple(parts))


# ---- transport options ------------------------------------------------------------


# ---- the other tables ---------------------------------------------------------------


def _cold_store(raw: Any) -> ColdStoreSpec:
    if not isinstance(raw, dict):
        raise fail("cold_store", "is not a table", "write a [cold_store] section")
    known = {"format": str, "roll_bytes": int, "roll_s": float}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise fail(f"cold_store.{key}", "unknown key", f"known: {', '.join(known)}")
        values[key] = checked(f"cold_store.{key}", value, known[key], RANGES)
    if values.get("format", "jsonl.gz") != "jsonl.gz":
        raise fail("cold_store.format", f"{show(values['format'])} is not available yet", "use 'jsonl.gz'")
    return ColdStoreSpec(**values)


def _rate(raw: Any) -> str:
    if raw in RATES:
        return str(raw)
    number = isinstance(raw, (int, float)) and not isinstance(raw, bool)
    raise fail(
        "rate",
        f"{show(raw)} is not 'contract' or 'max'" + (" (a fixed rate is devices / interval_s)" if number else ""),
        'give "contract" (one run at devices / interval_s) or "max" (a ramp to each cell\'s highest '
        "sustained rate, bounded by [rate_search])",
    )


def _rate_search(raw: Any, rate: str) -> RateSearch:
    if raw is None:
        return RateSearch()
    if rate != "max":
        raise fail("rate_search", f"is set but rate is {rate!r}", 'set rate = "max", or remove the table')
    if not isinstance(raw, dict):
        raise fail("rate_search", "is not a table", "write a [rate_search] section")
    known = [f.name for f in dataclasses.fields(RateSearch)]
    values = {}
    for key, value in raw.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            raise fail(
                f"rate_search.{key}",
                "unknown key",
                f"did you mean '{close[0]}'?" if close else f"known: {', '.join(known)}",
            )
        values[key] = checked(f"rate_search.{key}", value, float, RANGES)
    search = RateSearch(**values)
    if search.min_eps > search.max_eps:
        raise fail("rate_search.min_eps", f"{shown_number(search.min_eps)} is above max_eps "
                    f"{shown_number(search.max_eps)}", "give min_eps <= max_eps")  # fmt: skip
    start = search.start_eps
    if start is not None and not search.min_eps <= start <= search.max_eps:
        raise fail("rate_search.start_eps", f"{shown_number(start)} is outside min_eps .. max_eps "
                    f"({shown_number(search.min_eps)} .. {shown_number(search.max_eps)})",
                    "give a start within them")  # fmt: skip
    return search


def _prices(raw: Any) -> Prices:
    if isinstance(raw, dict):
        for key, value in raw.items():  # parse_prices takes any number >= 0: not NaN, inf or 10**400
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not _finite(value):
                raise fail(f"prices.{key}", f"{show(value)} is not a finite number", "give a price")
    try:
        return parse_prices(raw)
    except PricesError as exc:
        raise SpecError(str(exc)) from None


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


# ---- files ---------------------------------------------------------------------------


def load_spec(path: Path | str) -> Spec:
    """Read and validate a TOML spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"spec {path}: cannot read it ({exc.strerror}); check the path") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"spec {path}: not valid TOML ({exc}); fix the syntax there") from None
    return parse_spec(raw)


def default_spec() -> Spec:
    """The built-in spec: what ``iotbench run`` runs with no SPEC."""
    raw = tomllib.loads(resources.files("iotbench").joinpath("default_spec.toml").read_text())
    return parse_spec(raw)
