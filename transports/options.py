"""Transport options: one frozen dataclass per transport, each option declared once.

A field holds the option's type, its default, its range or choices and what it is for:

    @dataclass(frozen=True)
    class MqttOptions(TransportOptions):
        transport: ClassVar[str] = "mqtt"
        qos: int = option(1, "0: at most once; 1: at least once", choices=(0, 1))

Constructing the structure checks every value (no I/O) and raises ``TransportError`` with
one line: the transport, the option, the bad value, what is allowed. Loading a spec
constructs each option variant once (``iotbench.model.spec``), so a bad value is refused
before any server starts or any file is written; the transport is built from the same
structure (``MqttTransport(qos=0)`` makes ``MqttOptions(qos=0)``), and ``iotbench list``
prints the declarations.

    >>> from iotbench.transports.mqtt import MqttOptions
    >>> MqttOptions(qos=2)
    Traceback (most recent call last):
    iotbench.transports.base.TransportError: mqtt qos=2 is not known; use one of 0, 1
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from iotbench.transports.base import TransportError

__all__ = ["CONNECT_TIMEOUT_S", "Declared", "Option", "TransportOptions", "option", "shown"]

# The runner bounds a server start plus its connects at 120 s (runner.START_TIMEOUT_S):
# a longer connect timeout could never fire; under 0.1 s a loopback TLS handshake can miss it.
CONNECT_TIMEOUT_S = (0.1, 120.0)
_KEY = "iotbench.option"


@dataclass(frozen=True)
class Option:
    """What an option is for and which values it takes, beside its type and default."""

    help: str
    choices: tuple[Any, ...] = ()  # the only values taken (of the same type: TOML's true is not 1)
    low: float | None = None  # a number's range, both ends included
    high: float | None = None
    unit: str = ""  # after the range, in messages and in `iotbench list`
    also: tuple[Any, ...] = ()  # values taken beside the range, e.g. "auto"
    nonempty: bool = False  # text that may not be ""


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[Any, ...] = (),
    low: float | None = None,
    high: float | None = None,
    unit: str = "",
    also: tuple[Any, ...] = (),
    nonempty: bool = False,
) -> Any:
    """A dataclass field for one option: ``qos: int = option(1, "0: at most once", choices=(0, 1))``."""
    return field(default=default, metadata={_KEY: Option(help, tuple(choices), low, high, unit, tuple(also), nonempty)})


def shown(value: Any) -> str:
    """A value as a spec writes it: ``"text"``, ``true``, ``1``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value) if isinstance(value, float) else str(value)


def _listed(values: tuple[Any, ...]) -> str:
    return ", ".join(shown(v) for v in values)


def _number(x: float) -> str:
    """1048576, not 1.04858e+06: a range is read digit by digit."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _same(value: Any, allowed: Any) -> bool:
    return type(value) is type(allowed) and value == allowed


@dataclass(frozen=True)
class Declared:
    """One option as declared: what ``iotbench list`` shows and what a value is checked against."""

    name: str
    types: tuple[type, ...]  # from the annotation: ``int | str`` is (int, str)
    default: Any
    option: Option

    @property
    def kind(self) -> str:
        return " | ".join(t.__name__ for t in self.types)

    def allowed(self) -> str:
        """``one of 0, 1``; ``1 to 1024 partitions``; ``non-empty``; ``""`` for any value of the type."""
        o = self.option
        if o.choices:
            return f"one of {_listed(o.choices)}"
        text = self._range() or ("non-empty" if o.nonempty else "")
        return ", or ".join(p for p in (text, _listed(o.also)) if p)

    def _range(self) -> str:
        o = self.option
        if o.low is None or o.high is None:
            return ""
        return " ".join(p for p in (f"{_number(o.low)} to {_number(o.high)}", o.unit) if p)

    def check(self, transport: str, value: Any) -> None:
        """Raise ``TransportError`` naming the option, the value and what is allowed."""
        o, said = self.option, f"{transport} {self.name}={value!r}"
        if any(_same(value, a) for a in o.also):
            return
        if o.choices:
            if not any(_same(value, c) for c in o.choices):
                raise TransportError(f"{said} is not known; use one of {_listed(o.choices)}")
            return
        if float in self.types:  # an int is a number too (TOML's 10 for 10.0); NaN and inf are not
            ok = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
            what = "a number"
        elif int in self.types:
            ok, what = isinstance(value, int), "a whole number"
        elif bool in self.types:
            if not isinstance(value, bool):
                raise TransportError(f"{said} is not a boolean; use true or false")
            return
        else:
            if not isinstance(value, str) or (o.nonempty and not value):
                raise TransportError(f"{said} must be {'non-empty text' if o.nonempty else 'text'}")
            return
        if (
            isinstance(value, bool)
            or not ok
            or (o.low is not None and o.high is not None and not o.low <= value <= o.high)
        ):
            bounds = f" from {self._range()}" if self._range() else ""
            alternatives = f", or {_listed(o.also)}" if o.also else ""
            raise TransportError(f"{said} must be {what}{bounds}{alternatives}")


def _types(hint: Any) -> tuple[type, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(typing.get_args(hint))
    return (hint,)


@dataclass(frozen=True)
class TransportOptions:
    """The base of each transport's options; with no fields it is a transport that takes none."""

    transport: ClassVar[str] = "transport"  # the name errors start with

    def __post_init__(self) -> None:
        for declared in self.declared():
            declared.check(self.transport, getattr(self, declared.name))
        self.check()

    def check(self) -> None:
        """Rules one field cannot say: options that exclude each other, the shape of an endpoint, no
        password in a url (specs are saved with the results). Raise ``TransportError``."""

    @classmethod
    def declared(cls) -> list[Declared]:
        """Every option, in declaration order."""
        hints = typing.get_type_hints(cls)
        return [
            Declared(f.name, _types(hints[f.name]), f.default, f.metadata.get(_KEY, Option(""))) for f in fields(cls)
        ]

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
