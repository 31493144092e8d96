"""The codec contract: turn readings into bytes and back. Nothing else.

A codec never times itself and never compresses: the runner measures, and
compression is its own dimension (``iotbench.compression``). A codec is a module (or
any object) with the parts :class:`Codec` names; it may also declare the optional
parts in :data:`OPTIONAL`, and what it leaves out takes the default given there.

The registry hands out a :class:`LoadedCodec`: the plugin with those defaults applied
and one promise kept for it -- decoding raises only :class:`CodecError`. A codec
declares the exceptions its library raises on a payload it refuses (``errors``);
:func:`refusing` turns those into ``CodecError``, here and nowhere else, so a codec
module is the library calls alone and an outside codec gets the same promise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

from iotbench.model.telemetry import Reading

__all__ = ["OPTIONAL", "Codec", "CodecError", "CodecFunctions", "Errors", "LoadedCodec", "decode_failure", "refusing"]

Errors = tuple[type[BaseException], ...]


class CodecError(ValueError):
    """A payload that this codec cannot decode; the message says why, starting with the codec's name."""


@runtime_checkable
class Codec(Protocol):
    """Encode and decode one reading, or a batch of readings in one payload.

    >>> from iotbench.codecs import get_codec
    >>> codec = get_codec("json")
    >>> codec.decode(codec.encode(reading)) == reading          # doctest: +SKIP
    True
    """

    name: str  # the registry name, e.g. "msgpack"
    label: str  # what the report shows, e.g. "MessagePack (msgspec)"
    binary: bool  # False for text formats (no base64 needed in a JSON envelope)

    def encode(self, reading: Reading) -> bytes: ...

    def decode(self, payload: bytes) -> Reading: ...

    def encode_batch(self, readings: Sequence[Reading]) -> bytes: ...

    def decode_batch(self, payload: bytes) -> list[Reading]: ...


class CodecFunctions(NamedTuple):
    """The four functions of a codec, built for one model (``Reading`` or a later version).

    >>> encode, decode, encode_batch, decode_batch = for_model(Reading)   # doctest: +SKIP
    """

    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    encode_batch: Callable[[Sequence[Any]], bytes]
    decode_batch: Callable[[bytes], list[Any]]


OPTIONAL: dict[str, Any] = {
    # the distribution whose version the codec table and the benchmarks record ("msgspec");
    # "": not stated
    "library": "",
    # what the library raises on a payload it refuses, e.g. (msgspec.DecodeError,): decoding
    # through the registry turns these into CodecError. (): the codec raises CodecError itself
    "errors": (),
    # for_model(model) -> CodecFunctions: the same format for another version of the reading
    # (iotbench.codecs.schema.ReadingV2), which the schema-evolution table writes with one version
    # and reads with the other. None: the codec serves Reading only (the table says "unsupported")
    "for_model": None,
}
"""The optional parts of the contract and their defaults (what a codec that leaves one out gets)."""

_REQUIRED = ("name", "label", "binary", "encode", "decode", "encode_batch", "decode_batch")


def decode_failure(codec: str, exc: BaseException) -> CodecError:
    """The one error a decoder raises, naming the codec and what the library objected to.

    Libraries raise a zoo of exceptions on hostile bytes (ValueError, EOFError,
    IndexError, UnicodeDecodeError, OverflowError, RecursionError, ...); the caller
    only needs to know the payload was refused and why.
    """
    lines = str(exc).strip().splitlines()  # some libraries append whole schemas: keep the first line
    detail = lines[0][:200] if lines else "(no message)"
    return CodecError(f"{codec}: cannot decode payload: {type(exc).__name__}: {detail}")


def refusing(codec: str, errors: Errors, decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``decode`` whose declared ``errors`` become a CodecError naming ``codec`` (the one place this happens).

    >>> decode = refusing("json", (msgspec.DecodeError,), msgspec.json.Decoder(Reading).decode)  # doctest: +SKIP

    It costs one Python call, 25-35 ns here: about a tenth of a msgspec decode of one reading, under
    1 % of a batch of 100 (docs/codecs.md, "Plugin overhead").
    """
    if not errors:
        return decode

    def refused(payload: bytes) -> Any:
        try:
            return decode(payload)
        except CodecError:  # a ValueError too: already the codec's own words
            raise
        except errors as exc:
            raise decode_failure(codec, exc) from None

    return refused


class LoadedCodec:
    """A codec plugin as the harness uses it: every part of the contract present, decoding refusing
    with ``CodecError`` only. ``iotbench.codecs.get_codec`` returns these.

    >>> codec = LoadedCodec(json_codec)                                  # doctest: +SKIP
    >>> codec.decode(b"{")                                               # doctest: +SKIP
    Traceback (most recent call last):
    CodecError: json: cannot decode payload: DecodeError: Input data was truncated
    """

    __slots__ = (
        "plugin",
        "name",
        "label",
        "binary",
        "library",
        "errors",
        "encode",
        "decode",
        "encode_batch",
        "decode_batch",
        "for_model",
    )

    def __init__(self, plugin: Any) -> None:
        """Raises TypeError naming what is missing or malformed when ``plugin`` is not a codec."""
        missing = [part for part in _REQUIRED if not hasattr(plugin, part)]
        if missing:
            raise TypeError(
                f"{_where(plugin)} is not a codec: it lacks {', '.join(missing)} (iotbench.codecs.base.Codec)"
            )
        declared = {part: getattr(plugin, part, default) for part, default in OPTIONAL.items()}
        errors = declared["errors"]
        if not (
            isinstance(errors, tuple) and all(isinstance(e, type) and issubclass(e, BaseException) for e in errors)
        ):
            raise TypeError(f"{_where(plugin)}: errors must be a tuple of exception classes, not {errors!r}")
        self.plugin = plugin
        self.name: str = plugin.name
        self.label: str = plugin.label
        self.binary: bool = plugin.binary
        self.library: str = declared["library"]
        self.errors: Errors = errors
        self.encode: Callable[[Any], bytes] = plugin.encode
        self.encode_batch: Callable[[Sequence[Any]], bytes] = plugin.encode_batch
        self.decode: Callable[[bytes], Any] = refusing(self.name, errors, plugin.decode)
        self.decode_batch: Callable[[bytes], list[Any]] = refusing(self.name, errors, plugin.decode_batch)
        build = declared["for_model"]
        self.for_model: Callable[[type], CodecFunctions] | None = None if build is None else self._models(build)

    def _models(self, build: Callable[[type], Sequence[Callable[..., Any]]]) -> Callable[[type], CodecFunctions]:
        name, errors = self.name, self.errors

        def for_model(model: type) -> CodecFunctions:
            """The codec's functions for ``model``, decoding with the same promise."""
            encode, decode, encode_batch, decode_batch = build(model)
            return CodecFunctions(
                encode, refusing(name, errors, decode), encode_batch, refusing(name, errors, decode_batch)
            )

        return for_model

    def __repr__(self) -> str:
        return f"<codec {self.name!r} from {_where(self.plugin)}>"


def _where(plugin: Any) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__qualname__
