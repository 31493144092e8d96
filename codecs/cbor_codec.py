"""CBOR (RFC 8949) through cbor2's C extension.

A reading is a map of field names; the timestamp is tag 1 (epoch seconds), which
cbor2 writes as a float64 when there are microseconds -- exact to the microsecond
for dates before 2106 (the float's spacing stays under half a microsecond). A batch
is a CBOR array of maps.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import partial
from typing import Any

import cbor2
import msgspec
from msgspec.structs import asdict

from iotbench.codecs.base import CodecError, CodecFunctions
from iotbench.codecs.msgspec_support import converting_functions
from iotbench.model.telemetry import Reading

name = "cbor"
label = "CBOR (cbor2)"
binary = True
library = "cbor2"
errors = (cbor2.CBORDecodeError, msgspec.ValidationError)

_dumps = partial(cbor2.dumps, datetime_as_timestamp=True)


def _loads(payload: bytes) -> Any:
    # cbor2.loads ignores bytes after the first item: two readings glued together
    # would silently lose the second. Reading through a decoder lets us refuse them
    # (it costs ~0.6 us per payload, paid gladly).
    stream = io.BytesIO(payload)
    value = cbor2.CBORDecoder(stream).decode()
    if stream.tell() != len(payload):
        raise CodecError(f"{name}: {len(payload) - stream.tell()} bytes after the CBOR item")
    return value


def for_model(model: type) -> CodecFunctions:
    """CBOR maps for ``model``."""

    def encode(reading: Any) -> bytes:
        return _dumps(asdict(reading))

    def encode_batch(readings: Sequence[Any]) -> bytes:
        return _dumps([asdict(r) for r in readings])

    return converting_functions(model, encode, encode_batch, _loads)


encode, decode, encode_batch, decode_batch = for_model(Reading)
