"""The codec contract: turn readings into bytes and back. Nothing else.

A codec never times itself and never compresses: the runner measures, and
compression is its own dimension (``iotbench.compression``). A codec that cannot
read a payload raises :class:`CodecError` -- never another exception.

A codec may also expose ``for_model(model) -> CodecFunctions``: the same format
applied to another version of the reading (``iotbench.codecs.schema.ReadingV2``).
The schema-evolution table (``iotbench.studies.evolution``) uses it to write with
one version and read with the other, the way a fleet mid-upgrade does.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol, Sequence, runtime_checkable

from iotbench.model.telemetry import Reading

__all__ = ["Codec", "CodecError", "CodecFunctions", "decode_failure"]


class CodecError(ValueError):
    """A payload that this codec cannot decode; the message says why."""


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

    Codec modules build theirs once and unpack them into module globals, so the hot
    path is a plain function (or a C method) with no attribute lookups in between:

    >>> encode, decode, encode_batch, decode_batch = build(Reading)   # doctest: +SKIP
    """

    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    encode_batch: Callable[[Sequence[Any]], bytes]
    decode_batch: Callable[[bytes], list[Any]]


def decode_failure(codec: str, exc: BaseException) -> CodecError:
    """The one error a decoder raises, naming the codec and what the library objected to.

    Libraries raise a zoo of exceptions on hostile bytes (ValueError, EOFError,
    IndexError, UnicodeDecodeError, OverflowError, RecursionError, ...); the caller
    only needs to know the payload was refused and why.
    """
    lines = str(exc).strip().splitlines()  # some libraries append whole schemas: keep the first line
    detail = lines[0][:200] if lines else "(no message)"
    return CodecError(f"{codec}: cannot decode payload: {type(exc).__name__}: {detail}")
