"""Typed msgspec encoders and decoders, shared by the msgspec-backed codecs.

msgspec encodes the Struct directly and decodes straight into a typed model (the
decoder checks every field's type), so a codec is the library's encoder plus a
decoder chained (in C, ``iotbench.codecs.chain``) only to turn ``msgspec.DecodeError``
into ``CodecError``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Sequence

import msgspec

from iotbench.codecs.base import CodecError, CodecFunctions, decode_failure
from iotbench.codecs.chain import chain

__all__ = [
    "REFUSED", "compile_functions", "converting_functions", "keyword_arguments", "refusal", "typed_functions",
]

# msgspec raises DecodeError (ValidationError is one) for bad input, except for
# invalid UTF-8 inside a JSON string: that surfaces as UnicodeDecodeError, a
# ValueError (found by tests/test_codec_fuzz.py).
REFUSED = (msgspec.DecodeError, ValueError)


def typed_functions(protocol: ModuleType, codec: str, model: type) -> CodecFunctions:
    """Encode/decode ``model`` with ``protocol`` (``msgspec.json`` or ``msgspec.msgpack``).

    A batch is the format's own array of readings.
    """
    encoder = protocol.Encoder()
    refuse = refusal(codec)
    decode = chain([protocol.Decoder(model).decode], refused=REFUSED, refuse=refuse)
    decode_batch = chain([protocol.Decoder(list[model]).decode], refused=REFUSED, refuse=refuse)  # type: ignore[valid-type]
    # encoder.encode takes a Struct or a list of them: no Python frame on the encode path
    return CodecFunctions(encoder.encode, decode, encoder.encode, decode_batch)


def refusal(codec: str) -> Callable[[BaseException], CodecError]:
    """What a chained msgspec decoder raises instead of msgspec's error: ``CodecError("json: ...")``."""
    def refuse(exc: BaseException) -> CodecError:
        return CodecError(f"{codec}: {exc}")
    return refuse


_CONVERTING = """
def decode(payload):
    try:
        return convert(loads(payload%(options)s), model)
    except Exception as exc:  # the library's own zoo of errors: see decode_failure
        raise decode_failure(codec, exc) from None

def decode_batch(payload):
    try:
        return convert(loads(payload%(options)s), many)
    except Exception as exc:
        raise decode_failure(codec, exc) from None
"""


def converting_functions(
    codec: str,
    model: type,
    encode: Callable[[Any], bytes],
    encode_batch: Callable[[Sequence[Any]], bytes],
    loads: Callable[..., Any],
    **options: int | str | bool | None,
) -> CodecFunctions:
    """Codec functions for a library that decodes to plain dicts and lists.

    ``msgspec.convert`` turns what ``loads(payload, **options)`` returned into
    ``model`` (or a list of them) in C, checking every field's type: a mutated
    payload that still parses (a string where a float belongs, a missing field) is
    refused here, not later in the consumer. Whatever the library raises on hostile
    bytes becomes a CodecError. The options are written into the generated decoder
    as literals: ``functools.partial`` with keywords builds a dict on every call
    (~100 ns, measured on msgpack's ``timestamp=3``).
    """
    if not all(k.isidentifier() and type(v) in (int, str, bool, type(None)) for k, v in options.items()):
        raise ValueError(f"options must be literal keyword values: {options!r}")
    rendered = "".join(f", {key}={value!r}" for key, value in options.items())
    functions = compile_functions(_CONVERTING % {"options": rendered}, {
        "convert": msgspec.convert, "loads": loads, "model": model, "many": list[model],  # type: ignore[valid-type]
        "codec": codec, "decode_failure": decode_failure,
    })
    return CodecFunctions(encode, functions["decode"], encode_batch, functions["decode_batch"])


def keyword_arguments(fields: Sequence[str], source: str, extra: Sequence[str] = ()) -> str:
    """``"a=row.a, b=row.b, e=e"``: the argument list a generated decoder passes to the model.

    ``fields`` and ``extra`` are field names from Struct or .proto definitions, which
    are identifiers; anything else is refused, so nothing foreign reaches ``exec``.
    """
    names = [*fields, *extra, source]
    if not all(isinstance(n, str) and n.isidentifier() and not n.startswith("_") for n in names):
        raise ValueError(f"not field names: {names!r}")
    return ", ".join([f"{f}={source}.{f}" for f in fields] + [f"{e}={e}" for e in extra])


def compile_functions(source: str, namespace: dict[str, Any]) -> dict[str, Callable[..., Any]]:
    """The functions ``source`` defines, by name, with ``namespace`` as their globals.

    Decoders that build a model from another object are generated once per model:
    a call with literal keyword arguments is several times faster than
    ``model(**asdict(row))`` (~80 ns against ~680 ns per reading), and generating
    the whole decoder, not just a copier, saves the second Python call -- ~25 ns,
    which is 10% of a 250 ns decode (docs/codecs.md, "Plugin overhead").
    """
    scope = dict(namespace)
    before = set(scope) | {"__builtins__"}
    exec(source, scope)
    return {key: value for key, value in scope.items() if key not in before}
