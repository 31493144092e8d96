"""The spec's checks, key by key: each bad value becomes one ``SpecError`` line naming the key
and the fix (``iotbench.model.spec`` assembles a ``Spec`` from what passes).

>>> from iotbench.model.limits import RANGES
>>> try:
...     checked("duration_s", -1.0, float, RANGES)
... except SpecError as exc:
...     print(exc)
spec key 'duration_s': -1.0 is negative; give a number > 0
"""

from __future__ import annotations

import difflib
import itertools
import math
from typing import Any

from iotbench.model.limits import MAX_CELL_RUNS, Range, shown_number
from iotbench.registry import PluginUnavailable
from iotbench.transports import TRANSPORTS, TransportError

__all__ = [
    "DIMENSIONS",
    "SpecError",
    "check_plugins",
    "checked",
    "exclusions",
    "fail",
    "in_range",
    "option_variants",
    "positive",
    "show",
    "transport_options",
    "typed",
]


DIMENSIONS = ("codec", "transport", "batch", "compression", "connections", "devices", "interval_s")
_ZERO_OK = {"warmup_s", "linger_ms", "start_spread_s", "seed"}


class SpecError(ValueError):
    """A spec that cannot run; the message names the key and the fix."""


def fail(key: str, problem: str, fix: str) -> SpecError:
    shown = key if key.isprintable() else repr(key)[1:-1]  # one line, whatever a quoted TOML key holds
    return SpecError(f"spec key '{shown}': {problem}; {fix}")


def show(value: Any) -> str:
    """``repr(value)`` for a message: one line, short, and safe for a 5,000-digit integer."""
    try:
        text = repr(value)
    except ValueError:  # an integer beyond str()'s digit limit
        return f"a {type(value).__name__} too large to print"
    return text if len(text) <= 80 else text[:77] + "..."


def typed(key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise fail(key, f"{show(value)} is too large", "give a number") from None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise fail(key, f"{show(value)} is a {type(value).__name__}", f"give a {kind.__name__}")
    if kind is float and not math.isfinite(value):  # type: ignore[arg-type]  # a float: checked just above
        raise fail(key, f"{value!r} is not a finite number", "give a number")
    return value


def positive(key: str, value: float, *, zero_ok: bool = False) -> None:
    if value < 0 or (value == 0 and not zero_ok):
        raise fail(
            key,
            f"{show(value)} is {'negative' if value < 0 else 'zero'}",
            f"give a number {'>= 0' if zero_ok else '> 0'}",
        )


def in_range(key: str, value: float, bounds: Range) -> None:
    if not bounds.low <= value <= bounds.high:
        side, limit = ("below", bounds.low) if value < bounds.low else ("above", bounds.high)
        raise fail(
            key,
            f"{shown_number(value)} is {side} {shown_number(limit)} ({bounds.why})",
            f"give a number from {shown_number(bounds.low)} to {shown_number(bounds.high)}",
        )


def checked(key: str, value: Any, kind: type, ranges: dict[str, Range]) -> Any:
    """``value`` of ``kind``, inside its declared range."""
    value = typed(key, value, kind)
    bounds = ranges.get(key)
    if bounds is not None:
        positive(key, value, zero_ok=key.rpartition(".")[2] in _ZERO_OK)
        in_range(key, value, bounds)
    return value


def check_plugins(key: str, names: tuple[str, ...], registry: Any) -> None:
    known = registry.names()
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            fix = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(known)}"
            raise fail(key, f"unknown {key[:-1]} {name!r}", f"{fix} (`iotbench list` shows them all)")
        usable, why = registry.status(name)
        if not usable:
            raise fail(key, why, "install it, or drop it from the spec")


def option_variants(options: dict[str, Any]) -> list[tuple[tuple[str, Any], ...]]:
    keys = sorted(options)
    values = [v if isinstance(v, list) else [v] for v in (options[k] for k in keys)]
    return [tuple(zip(keys, combo)) for combo in itertools.product(*values)] or [()]


def transport_options(raw: Any, transports: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise fail("transport_options", "is not a table", "write [transport_options.NAME] sections")
    out = {}
    for name, options in raw.items():
        key = f"transport_options.{name}"
        if name not in transports:
            raise fail(key, f"{name!r} is not in 'transports'", "add it to 'transports' or remove the section")
        try:
            transport = TRANSPORTS.load(name)
        except PluginUnavailable as exc:
            raise fail(key, str(exc), "install it, or drop the transport from the spec") from None
        known = transport.Options.names()
        if not isinstance(options, dict):
            raise fail(
                key,
                f"{show(options)} is not a table",
                f"write [{key}] with option = value lines ({name} takes: {', '.join(known) or 'no options'})",
            )
        for option, value in options.items():
            if option not in known:
                close = difflib.get_close_matches(option, known, n=1)
                fix = f"did you mean '{close[0]}'?" if close else f"{name} takes: {', '.join(known) or 'no options'}"
                raise fail(f"{key}.{option}", "unknown option", fix)
            _option_values(f"{key}.{option}", value)
        _construct_variants(key, transport, options)
        out[name] = dict(options)
    return out


def _option_values(key: str, value: Any) -> None:
    """One value, or a non-empty list of them (one more dimension); never a table or a nested list."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise fail(key, "is empty", "give a value, or a list of values to compare")
    for item in items:
        if not isinstance(item, (str, int, float, bool)):
            raise fail(
                key,
                f"{show(item)} is a {type(item).__name__}",
                "give a string, number or boolean (a list of them is one more dimension)",
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise fail(key, f"{item!r} is not a finite number", "give a number")


def _construct_variants(key: str, transport: Any, options: dict[str, Any]) -> None:
    """Build the transport's options once per variant: ``Options(**variant)`` checks every value
    (type, range, an endpoint's shape, no password in a url) and does no I/O."""
    count = math.prod(len(v) if isinstance(v, list) else 1 for v in options.values())
    if count > MAX_CELL_RUNS:
        raise fail(
            key,
            f"its lists make {count:,} variants, above {MAX_CELL_RUNS:,} cell runs",
            "compare fewer values in one spec",
        )
    for variant in option_variants(options):
        try:
            transport.Options(**dict(variant))
        except Exception as exc:  # noqa: BLE001 - whatever a constructor raises, the spec is at fault
            raise _option_error(key, transport, variant, exc) from None


def _option_error(key: str, transport: Any, variant: tuple[tuple[str, Any], ...], exc: Exception) -> SpecError:
    """The error naming the option that fails on its own, else the combination."""
    for option, value in variant:
        try:
            transport.Options(**{option: value})
        except Exception as alone:  # noqa: BLE001
            return SpecError(f"spec key '{key}.{option}': {_reason(alone)}")
    together = ", ".join(f"{option}={show(value)}" for option, value in variant)
    return SpecError(f"spec key '{key}': {together} together: {_reason(exc)}")


def _reason(exc: Exception) -> str:
    text = str(exc) if isinstance(exc, (TransportError, ValueError)) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())  # one line


def exclusions(raw: Any, options: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise fail("exclude", "is not a list of tables", 'write exclude = [{codec = "json", batch = 1}]')
    option_names = {o for opts in options.values() for o in opts}
    for rule in raw:
        for key, value in rule.items():
            if key not in DIMENSIONS and key not in option_names:
                raise fail(
                    f"exclude.{key}", "is not a matrix dimension", f"use {', '.join(DIMENSIONS)} or a transport option"
                )
            if not isinstance(value, (str, int, float, bool)):
                raise fail(
                    f"exclude.{key}",
                    f"{show(value)} is a {type(value).__name__}",
                    "give one value per rule (write one rule per value)",
                )
    return tuple(raw)
