"""Checks for transport options, shared by the transports' constructors.

A transport checks every option when it is constructed, and constructing does no I/O:
so loading a spec builds each option variant once, and a bad value is refused before
any server starts or any file is written (``iotbench.model.spec``). Each check raises
``TransportError`` with one line: the transport, the option, the bad value, what is
allowed.

    >>> whole("kafka", "partitions", 0, 1, 1024, "partitions")
    Traceback (most recent call last):
    iotbench.transports.base.TransportError: kafka partitions=0 must be a whole number from 1 to 1024 partitions
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from iotbench.transports.base import TransportError

__all__ = ["choice", "declared", "flag", "number", "text", "whole", "CONNECT_TIMEOUT_S"]

# The runner bounds a server start plus its connects at 120 s (runner.START_TIMEOUT_S):
# a longer connect timeout could never fire; under 0.1 s a loopback TLS handshake can miss it.
CONNECT_TIMEOUT_S = (0.1, 120.0)


def declared(transport: str, options: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` overlaid with ``options``; a name the transport does not declare is refused."""
    unknown = set(options) - set(defaults)
    if unknown:
        raise TransportError(f"unknown {transport} option(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(defaults)}")
    return {**defaults, **options}


def choice(transport: str, option: str, value: Any, allowed: tuple[Any, ...]) -> Any:
    """``value`` when it is one of ``allowed`` -- of the same type: TOML's ``true`` is not 1, ``1.0`` is not 1."""
    if not any(type(value) is type(a) and value == a for a in allowed):
        raise TransportError(f"{transport} {option}={value!r} is not known; use one of "
                             f"{', '.join(repr(a) if isinstance(a, str) else str(a) for a in allowed)}")
    return value


def flag(transport: str, option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TransportError(f"{transport} {option}={value!r} is not a boolean; use true or false")
    return value


def whole(transport: str, option: str, value: Any, low: int, high: int, unit: str) -> int:
    """``value`` when it is a whole number in [low, high]; else the error naming the option and the range."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TransportError(f"{transport} {option}={value!r} must be a whole number from {low} to {high} {unit}")
    return value


def number(transport: str, option: str, value: Any, low: float, high: float, unit: str) -> float:
    """``value`` as a float when it is a finite number in [low, high] (NaN and inf are refused)."""
    finite = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    if isinstance(value, bool) or not finite or not low <= value <= high:
        raise TransportError(f"{transport} {option}={value!r} must be a number from {low:g} to {high:g} {unit}")
    return float(value)


def text(transport: str, option: str, value: Any, *, empty_ok: bool = True) -> str:
    if not isinstance(value, str) or (not value and not empty_ok):
        raise TransportError(f"{transport} {option}={value!r} must be {'text' if empty_ok else 'non-empty text'}")
    return value
