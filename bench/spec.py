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
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from iotbench.codecs import CODECS
from iotbench.compression import compression_names
from iotbench.cost import DEFAULT_PRICES, Prices, PricesError, parse_prices
from iotbench.registry import PluginUnavailable
from iotbench.transports import TRANSPORTS

__all__ = ["Cell", "Spec", "SpecError", "load_spec", "parse_spec", "default_spec"]

DIMENSIONS = ("codec", "transport", "batch", "compression", "connections", "devices", "interval_s")


class SpecError(ValueError):
    """A spec that cannot run; the message names the key and the fix."""


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
        return f"{self.codec}/{transport}/b{self.batch}/{self.compression}/c{self.connections}/d{self.devices}@{self.interval_s:g}s"

    @property
    def target_eps(self) -> float:
        return self.devices / self.interval_s


@dataclass(frozen=True)
class ColdStoreSpec:
    format: str = "jsonl.gz"
    roll_bytes: int = 4 * 1024 * 1024
    roll_s: float = 2.0


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
    send_timeout_s: float = 10.0
    drain_timeout_s: float = 15.0
    name: str = "iotbench"
    exclude: tuple[dict[str, Any], ...] = ()
    transport_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    cold_store: ColdStoreSpec = ColdStoreSpec()
    prices: Prices = DEFAULT_PRICES  # dated Azure prices for the report's cost section
    parts: tuple["Spec", ...] = ()  # [[matrix]] tables: the cells are the union of theirs

    def cells(self) -> list[Cell]:
        if self.parts:
            return list(dict.fromkeys(c for part in self.parts for c in part.cells()))
        out = []
        for codec, transport, batch, comp, conns, devices, interval in itertools.product(
            self.codecs, self.transports, self.batch, self.compression, self.connections, self.devices, self.interval_s
        ):
            for options in _option_variants(self.transport_options.get(transport, {})):
                cell = Cell(codec, transport, batch, comp, conns, devices, interval, options)
                if not any(_matches(cell, rule) for rule in self.exclude):
                    out.extend(_replace_repeat(cell, r) for r in range(self.repeats))
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _replace_repeat(cell: Cell, repeat: int) -> Cell:
    return Cell(**{**asdict(cell), "transport_options": cell.transport_options, "repeat": repeat})


def _option_variants(options: dict[str, Any]) -> list[tuple[tuple[str, Any], ...]]:
    keys = sorted(options)
    values = [v if isinstance(v, list) else [v] for v in (options[k] for k in keys)]
    return [tuple(zip(keys, combo)) for combo in itertools.product(*values)] or [()]


def _matches(cell: Cell, rule: dict[str, Any]) -> bool:
    options = dict(cell.transport_options)
    return all((options.get(k) if k not in DIMENSIONS else getattr(cell, k)) == v for k, v in rule.items())


# ---- validation -----------------------------------------------------------------

_LISTS = {"codecs": str, "transports": str, "batch": int, "compression": str, "connections": int,
          "devices": int, "interval_s": float}
_SCALARS = {"jitter": float, "start_spread_s": float, "duration_s": float, "warmup_s": float, "repeats": int,
            "seed": int, "linger_ms": float, "max_inflight": int, "send_timeout_s": float,
            "drain_timeout_s": float, "name": str}
_TABLES = {"exclude", "transport_options", "cold_store", "prices"}
_KNOWN = sorted({*_LISTS, *_SCALARS, *_TABLES, "matrix"})
_PART_KEYS = sorted({*_LISTS, "exclude", "transport_options"})


def _fail(key: str, problem: str, fix: str) -> SpecError:
    return SpecError(f"spec key '{key}': {problem}; {fix}")


def _typed(key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _fail(key, f"{value!r} is a {type(value).__name__}", f"give a {kind.__name__}")
    return value


def _positive(key: str, value: float, *, zero_ok: bool = False) -> None:
    if value < 0 or (value == 0 and not zero_ok):
        raise _fail(key, f"{value!r} is {'negative' if value < 0 else 'zero'}",
                    f"give a number {'>= 0' if zero_ok else '> 0'}")


def parse_spec(raw: dict[str, Any]) -> Spec:
    """A validated Spec from a TOML document's dict.

    ``[[matrix]]`` tables (optional) each override the dimensions of the top level; the
    cells are the union of theirs -- "every codec on one transport, plus two codecs on
    every transport" without the full cross product.
    """
    if "matrix" in raw:
        return _with_parts(raw)
    for key in raw:
        if key not in _KNOWN:
            close = difflib.get_close_matches(key, _KNOWN, n=1)
            raise _fail(key, "unknown key", f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(_KNOWN)}")
    values: dict[str, Any] = {}
    for key, registry in (("codecs", CODECS), ("transports", TRANSPORTS)):
        if raw.get(key) == "all":  # every one that can run on this machine
            raw = {**raw, key: [n for n in registry.names() if registry.status(n)[0]]}
    for key, kind in _LISTS.items():
        if key in raw:
            items = raw[key] if isinstance(raw[key], list) else [raw[key]]
            if not items:
                raise _fail(key, "is empty", "name at least one value")
            values[key] = tuple(_typed(key, v, kind) for v in items)
    for key, kind in _SCALARS.items():
        if key in raw:
            values[key] = _typed(key, raw[key], kind)
    for key in ("batch", "connections", "devices", "interval_s"):
        for v in values.get(key, ()):
            _positive(key, v)
    for key in ("duration_s", "repeats", "max_inflight", "send_timeout_s", "drain_timeout_s"):
        if key in values:
            _positive(key, values[key])
    for key in ("warmup_s", "linger_ms", "start_spread_s"):
        if key in values:
            _positive(key, values[key], zero_ok=True)
    if not 0 <= values.get("jitter", 0.1) < 0.5:
        raise _fail("jitter", f"{values['jitter']!r} is outside 0..0.5", "give a fraction of the interval, e.g. 0.1")
    values.setdefault("codecs", ("json", "msgpack"))
    values.setdefault("transports", ("inprocess",))
    _check_plugins("codecs", values["codecs"], CODECS)
    _check_plugins("transports", values["transports"], TRANSPORTS)
    for comp in values.get("compression", ()):
        if comp not in compression_names():
            raise _fail("compression", f"unknown compression {comp!r}", f"use one of {', '.join(compression_names())}")
    values["transport_options"] = _transport_options(raw.get("transport_options", {}), values["transports"])
    values["exclude"] = _exclusions(raw.get("exclude", []), values["transport_options"])
    values["cold_store"] = _cold_store(raw.get("cold_store", {}))
    try:
        values["prices"] = parse_prices(raw.get("prices", {}))
    except PricesError as exc:
        raise SpecError(str(exc)) from None
    return Spec(**values)


def _with_parts(raw: dict[str, Any]) -> Spec:
    tables = raw["matrix"]
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise _fail("matrix", "is not a list of tables", "write [[matrix]] sections with dimension keys")
    base = {k: v for k, v in raw.items() if k != "matrix"}
    parts = []
    for n, table in enumerate(tables):
        for key in table:
            if key not in _PART_KEYS:
                raise _fail(f"matrix[{n}].{key}", "cannot differ between matrix tables",
                            f"use {', '.join(_PART_KEYS)} there, and set the rest at the top level")
        parts.append(parse_spec({**base, **table}))
    return dataclasses.replace(parse_spec(base), parts=tuple(parts))


def _check_plugins(key: str, names: tuple[str, ...], registry: Any) -> None:
    known = registry.names()
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            fix = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(known)}"
            raise _fail(key, f"unknown {key[:-1]} {name!r}", f"{fix} (`iotbench list` shows them all)")
        usable, why = registry.status(name)
        if not usable:
            raise _fail(key, why, "install it, or drop it from the spec")


def _transport_options(raw: Any, transports: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise _fail("transport_options", "is not a table", "write [transport_options.NAME] sections")
    out = {}
    for name, options in raw.items():
        key = f"transport_options.{name}"
        if name not in transports:
            raise _fail(key, f"{name!r} is not in 'transports'", "add it to 'transports' or remove the section")
        try:
            known = TRANSPORTS.load(name).OPTIONS
        except PluginUnavailable as exc:
            raise _fail(key, str(exc), "install it, or drop the transport from the spec") from None
        for option in options:
            if option not in known:
                close = difflib.get_close_matches(option, list(known), n=1)
                fix = f"did you mean '{close[0]}'?" if close else f"{name} takes: {', '.join(known) or 'no options'}"
                raise _fail(f"{key}.{option}", "unknown option", fix)
        out[name] = dict(options)
    return out


def _exclusions(raw: Any, options: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise _fail("exclude", "is not a list of tables", 'write exclude = [{codec = "json", batch = 1}]')
    option_names = {o for opts in options.values() for o in opts}
    for rule in raw:
        for key in rule:
            if key not in DIMENSIONS and key not in option_names:
                raise _fail(f"exclude.{key}", "is not a matrix dimension",
                            f"use {', '.join(DIMENSIONS)} or a transport option")
    return tuple(raw)


def _cold_store(raw: Any) -> ColdStoreSpec:
    if not isinstance(raw, dict):
        raise _fail("cold_store", "is not a table", "write a [cold_store] section")
    known = {"format": str, "roll_bytes": int, "roll_s": float}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise _fail(f"cold_store.{key}", "unknown key", f"known: {', '.join(known)}")
        values[key] = _typed(f"cold_store.{key}", value, known[key])
    if values.get("format", "jsonl.gz") != "jsonl.gz":
        raise _fail("cold_store.format", f"{values['format']!r} is not available yet", "use 'jsonl.gz'")
    for key in ("roll_bytes", "roll_s"):
        if key in values:
            _positive(f"cold_store.{key}", values[key])
    return ColdStoreSpec(**values)


def load_spec(path: Path | str) -> Spec:
    """Read and validate a TOML spec file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"spec {path}: cannot read it ({exc.strerror}); check the path") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"spec {path}: not valid TOML ({exc}); fix the syntax there") from None
    return parse_spec(raw)


def default_spec() -> Spec:
    """The built-in spec: what ``iotbench run`` runs with no SPEC."""
    raw = tomllib.loads(resources.files("iotbench").joinpath("default_spec.toml").read_text())
    return parse_spec(raw)
