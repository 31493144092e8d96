"""MessagePack without field names: each reading is a positional array (msgspec ``array_like``).

This is the schema-first variant of a self-describing format: the reader must know
the field order, exactly as with Protobuf or Avro. Set beside ``msgpack-msgspec`` it
shows how much of a MessagePack event is field names (about half). The price shows in
the schema-evolution table: a removed field shifts every later position.
"""

from __future__ import annotations

from typing import Any, Sequence

import msgspec
from msgspec.structs import astuple

from iotbench.codecs.base import CodecError, CodecFunctions
from iotbench.codecs.chain import chain
from iotbench.codecs.msgspec_support import REFUSED, compile_functions, keyword_arguments, refusal
from iotbench.model.telemetry import Reading

name = "msgpack-array"
label = "MessagePack positional (msgspec array_like)"
binary = True
library = "msgspec"


def _positional(model: type) -> type:
    """A Struct with ``model``'s fields in order, encoded as an array (trailing defaults may be omitted)."""
    fields = [
        (f.name, f.type) if f.default is msgspec.NODEFAULT else (f.name, f.type, f.default)
        for f in msgspec.structs.fields(model)
    ]
    return msgspec.defstruct(f"{model.__name__}Row", fields, array_like=True, frozen=True)


_DECODE_BATCH = """
def decode_batch(payload):
    try:
        rows = decode_rows(payload)
    except REFUSED as exc:
        raise CodecError(f"{name}: {exc}") from None
    return [model(%(fields)s) for row in rows]
"""


def for_model(model: type) -> CodecFunctions:
    """Positional arrays for ``model``: ``astuple`` out; in, a typed row copied into the model.

    The single-event functions are C chains (``iotbench.codecs.chain``): ``pack(astuple(r))``
    and ``model(**astuple(decode_row(p)) as keywords)`` without a Python frame, which would cost a
    quarter of a ~100 ns encode. The row's fields are the model's, in order.
    """
    row = _positional(model)
    pack = msgspec.msgpack.Encoder().encode
    refuse = refusal(name)
    decode = chain([msgspec.msgpack.Decoder(row).decode, astuple, model], last_keywords=model.__struct_fields__,
                   refused=REFUSED, refuse=refuse)
    namespace = {"decode_rows": msgspec.msgpack.Decoder(list[row]).decode,  # type: ignore[valid-type]
                 "model": model, "name": name, "REFUSED": REFUSED, "CodecError": CodecError}
    fields = keyword_arguments(model.__struct_fields__, "row")
    decode_batch = compile_functions(_DECODE_BATCH % {"fields": fields}, namespace)["decode_batch"]

    def encode_batch(readings: Sequence[Any]) -> bytes:
        return pack([astuple(r) for r in readings])

    return CodecFunctions(chain([astuple, pack]), decode, encode_batch, decode_batch)


encode, decode, encode_batch, decode_batch = for_model(Reading)
