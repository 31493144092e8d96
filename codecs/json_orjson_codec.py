"""JSON through orjson: the other fast JSON library, decoding to dicts.

orjson writes the same JSON as ``json`` (msgspec) apart from the timestamp's
"+00:00" suffix; decoding goes through dicts, then msgspec checks the types.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from msgspec.structs import asdict

from iotbench.codecs.base import CodecFunctions
from iotbench.codecs.msgspec_support import converting_functions
from iotbench.model.telemetry import Reading

name = "json-orjson"
label = "JSON (orjson)"
binary = False
library = "orjson"
errors = (orjson.JSONDecodeError, msgspec.ValidationError)


def for_model(model: type) -> CodecFunctions:
    """orjson calls ``asdict`` for each Struct it meets: one C call per event or per batch."""
    dumps = orjson.dumps

    # a def, not functools.partial: a partial with keywords builds a dict per call
    def encode(reading: Any) -> bytes:
        return dumps(reading, default=asdict)

    return converting_functions(model, encode, encode, orjson.loads)


encode, decode, encode_batch, decode_batch = for_model(Reading)
