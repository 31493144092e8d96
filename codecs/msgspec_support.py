"""Typed msgspec encoders and decoders, shared by the msgspec-backed codecs.

msgspec encodes the Struct directly and decodes straight into a typed model (the
decoder checks every field's type), so a codec is the library's encoder plus a
decoder wrapped only to turn ``msgspec.DecodeError`` into ``CodecError``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Sequence

import msgspec

from iotbench.codecs.base import CodecError, CodecFunctions, decode_failure

__all__ = ["REFUSED", "converting_functions", "field_copier", "typed_functions"]

# msgspec raises DecodeError (ValidationError is one) for bad input, except for
# invalid UTF-8 inside a JSON string: that surfaces as UnicodeDecodeError, a
# ValueError (found by tests/test_codec_fuzz.py).
REFUSED = (msgspec.DecodeError, ValueError)


def typed_functions(protocol: ModuleType, codec: str, model: type) -> CodecFunctions:
    """Encode/decode ``model`` with ``protocol`` (``msgspec.json`` or ``msgspec.msgpack``).

    A batch is the format's own array of readings.
    """
    encoder = protocol.Encoder()
    decode_one = protocol.Decoder(model).decode
    decode_many = protocol.Decoder(list[model]).decode  # type: ignore[valid-type]

    def decode(payload: bytes) -> Any:
        try:
            return decode_one(payload)
        except REFUSED as exc:
            raise CodecError(f"{codec}: {exc}") from None

    def decode_batch(payload: bytes) -> list[Any]:
        try:
            return decode_many(payload)
        except REFUSED as exc:
            raise CodecError(f"{codec}: {exc}") from None

    # encoder.encode takes a Struct or a list of them: no Python frame on the encode path
    return CodecFunctions(encoder.encode, decode, encoder.encode, decode_batch)


def converting_functions(
    codec: str,
    model: type,
    encode: Callable[[Any], bytes],
    encode_batch: Callable[[Sequence[Any]], bytes],
    loads: Callable[[bytes], Any],
) -> CodecFunctions:
    """Codec functions for a library that decodes to plain dicts and lists.

    ``msgspec.convert`` turns what ``loads`` returned into ``model`` (or a list of
    them) in C, checking every field's type: a mutated payload that still parses
    (a string where a float belongs, a missing field) is refused here, not later in
    the consumer. Whatever the library raises on hostile bytes becomes a CodecError.
    """
    convert = msgspec.convert
    many = list[model]  # type: ignore[valid-type]

    def decode(payload: bytes) -> Any:
        try:
            return convert(loads(payload), model)
        except Exception as exc:  # the library's own zoo of errors: see decode_failure
            raise decode_failure(codec, exc) from None

    def decode_batch(payload: bytes) -> list[Any]:
        try:
            return convert(loads(payload), many)
        except Exception as exc:
            raise decode_failure(codec, exc) from None

    return CodecFunctions(encode, decode, encode_batch, decode_batch)


def field_copier(target: Callable[..., Any], fields: Sequence[str], extra: Sequence[str] = ()) -> Callable[..., Any]:
    """``copy(source, *extra_values)`` -> ``target(f=source.f, ..., e=extra_value, ...)``.

    The function is generated once per model, because a call with literal keyword
    arguments is several times faster than ``target(**asdict(source))`` (measured:
    ~80 ns against ~680 ns per reading) and decoding is the consumer's hot path.
    ``fields`` and ``extra`` are field names from Struct or .proto definitions, which
    are identifiers; anything else is refused.
    """
    names = [*fields, *extra]
    if not all(isinstance(n, str) and n.isidentifier() and not n.startswith("_") for n in names):
        raise ValueError(f"not field names: {names!r}")
    arguments = ", ".join([f"{f}=source.{f}" for f in fields] + [f"{e}={e}" for e in extra])
    source = f"def copy(source, {', '.join(extra)}):\n    return target({arguments})\n"
    namespace: dict[str, Any] = {"target": target}
    exec(source.replace("(source, )", "(source)"), namespace)
    return namespace["copy"]
