"""What the msgspec-backed codecs share: typed functions and dict-converting decoders.

msgspec encodes the Struct directly and decodes straight into a typed model (the
decoder checks every field's type). Libraries that decode to dicts and lists hand
their result to ``msgspec.convert``, which checks the same types in C. Neither turns
an error into ``CodecError``: the codec declares its library's errors (``errors``)
and the registry converts them (``iotbench.codecs.base.refusing``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import msgspec

from iotbench.codecs.base import CodecFunctions

__all__ = ["MSGSPEC_ERRORS", "converting_functions", "typed_functions"]

# msgspec raises DecodeError (ValidationError is one) for bad input, except for invalid
# UTF-8 inside a JSON string: that surfaces as UnicodeDecodeError (found by
# tests/unit/test_codec_fuzz.py; msgspec/msgspec#714)
MSGSPEC_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)


def typed_functions(protocol: ModuleType, model: type) -> CodecFunctions:
    """Encode/decode ``model`` with ``protocol`` (``msgspec.json`` or ``msgspec.msgpack``).

    A batch is the format's own array of readings; every function is the library's own C method.
    """
    encoder = protocol.Encoder()
    many = list[model]  # type: ignore[valid-type]
    return CodecFunctions(encoder.encode, protocol.Decoder(model).decode, encoder.encode, protocol.Decoder(many).decode)


def converting_functions(
    model: type,
    encode: Callable[[Any], bytes],
    encode_batch: Callable[[Sequence[Any]], bytes],
    loads: Callable[[bytes], Any],
) -> CodecFunctions:
    """Codec functions for a library whose ``loads`` returns plain dicts and lists.

    ``msgspec.convert`` turns them into ``model`` (or a list of them) in C, checking every
    field's type: a mutated payload that still parses (a string where a float belongs, a
    missing field) is refused here (``msgspec.ValidationError``), not later in the consumer.
    """
    convert, many = msgspec.convert, list[model]  # type: ignore[valid-type]

    def decode(payload: bytes) -> Any:
        return convert(loads(payload), model)

    def decode_batch(payload: bytes) -> list[Any]:
        return convert(loads(payload), many)

    return CodecFunctions(encode, decode, encode_batch, decode_batch)
