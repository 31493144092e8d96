"""The codec contract: turn readings into bytes and back. Nothing else.

A codec never times itself and never compresses: the runner measures, and
compression is its own dimension (``iotbench.compression``). A codec that cannot
read a payload raises :class:`CodecError` -- never another exception.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from iotbench.telemetry import Reading

__all__ = ["Codec", "CodecError"]


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
