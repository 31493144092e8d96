"""Avro through the official ``avro`` library: the labelled reference the design card names.

Same bytes as ``avro`` (fastavro): single-object encoding per event, an object
container per batch. It is pure Python and about ten times slower -- near 19,000
events/s per core (FACTS.md) -- which is why the fast path exists; it stays to
show that the two libraries read each other's bytes and what the card's choice costs.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from io import BytesIO
from typing import Any

import avro.datafile
import avro.errors
import avro.io
import avro.schema
import msgspec
from msgspec.structs import asdict

from iotbench.codecs import avro_framing as framing
from iotbench.codecs.base import CodecError, CodecFunctions
from iotbench.codecs.schema import avro_schema
from iotbench.model.telemetry import Reading

name = "avro-official"
label = "Avro (official avro, reference)"
binary = True
library = "avro"
errors = (*framing.ERRORS, avro.errors.AvroException)

_PARSED = {m: avro.schema.parse(json.dumps(avro_schema(m))) for m in framing.MODELS}


def for_model(model: type) -> CodecFunctions:
    """Avro for ``model``, resolving any known writer schema to it on read."""
    own = _PARSED[model]
    header = framing.header_of(model)
    writer = avro.io.DatumWriter(own)
    readers = {m: avro.io.DatumReader(_PARSED[m], own) for m in framing.MODELS}
    convert, many = msgspec.convert, list[model]  # type: ignore[valid-type]

    def encode(reading: Any) -> bytes:
        out = BytesIO()
        out.write(header)
        writer.write(asdict(reading), avro.io.BinaryEncoder(out))
        return out.getvalue()

    def encode_batch(readings: Sequence[Any]) -> bytes:
        out = BytesIO()
        container = avro.datafile.DataFileWriter(out, avro.io.DatumWriter(), own, codec="null")
        for reading in readings:
            container.append(asdict(reading))
        container.flush()
        return out.getvalue()

    def decode(payload: bytes) -> Any:
        reader = readers[framing.model_of_header(name, payload)]
        stream = BytesIO(payload)
        stream.seek(framing.HEADER_SIZE)
        datum = reader.read(avro.io.BinaryDecoder(stream))
        if stream.tell() != len(payload):
            raise CodecError(f"{name}: {len(payload) - stream.tell()} bytes after the datum")
        return convert(datum, model)

    def decode_batch(payload: bytes) -> list[Any]:
        with warnings.catch_warnings():
            # a hostile header's schema would otherwise warn (IgnoredLogicalType) on every payload
            warnings.simplefilter("ignore", avro.errors.IgnoredLogicalType)
            records = avro.datafile.DataFileReader(BytesIO(payload), avro.io.DatumReader(None, own))
        framing.model_of_schema_text(name, records.get_meta("avro.schema"))
        codec = records.get_meta("avro.codec") or b"null"
        if codec != b"null":
            raise CodecError(f"{name}: container codec {codec!r}: compression is the runner's job")
        return convert(list(records), many)

    return CodecFunctions(encode, decode, encode_batch, decode_batch)


encode, decode, encode_batch, decode_batch = for_model(Reading)
