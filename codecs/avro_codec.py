"""Avro through fastavro: the fast path (the official library is ``avro-official``).

One event: single-object encoding (``C3 01`` + schema fingerprint + schemaless
datum), so every message names its schema in 10 bytes. A batch: an object container
with one uncompressed block, whose header embeds the writer schema (about 0.6 KB --
amortised over a batch, prohibitive per event). Compression stays the runner's
dimension: a container whose header asks for a codec other than "null" is refused.
Reading data written with another known version resolves it through the reader
schema, the way Avro promises (see ``iotbench.studies.evolution``).
"""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from typing import Any

import fastavro
import msgspec
from fastavro.read import SchemaResolutionError
from fastavro.schema import SchemaParseException
from msgspec.structs import asdict

from iotbench.codecs import avro_framing as framing
from iotbench.codecs.base import CodecError, CodecFunctions
from iotbench.codecs.schema import avro_schema
from iotbench.model.telemetry import Reading

name = "avro"
label = "Avro (fastavro)"
binary = True
library = "fastavro"
# and, from a container header's schema: KeyError (no avro.schema), SchemaParseException; from
# reading one version with the other: SchemaResolutionError (a reader field without a default)
errors = (*framing.ERRORS, KeyError, SchemaParseException, SchemaResolutionError)

_PARSED = {m: fastavro.parse_schema(avro_schema(m)) for m in framing.MODELS}


def for_model(model: type) -> CodecFunctions:
    """Avro for ``model``: its schema writes; any known writer schema is resolved to it on read."""
    own = _PARSED[model]
    header = framing.header_of(model)
    write_datum, read_datum = fastavro.schemaless_writer, fastavro.schemaless_reader
    convert, many = msgspec.convert, list[model]  # type: ignore[valid-type]

    def encode(reading: Any) -> bytes:
        out = BytesIO()
        out.write(header)
        write_datum(out, own, asdict(reading))
        return out.getvalue()

    def encode_batch(readings: Sequence[Any]) -> bytes:
        out = BytesIO()
        fastavro.writer(out, own, [asdict(r) for r in readings], codec="null")
        return out.getvalue()

    def decode(payload: bytes) -> Any:
        writer = framing.model_of_header(name, payload)
        stream = BytesIO(payload)
        stream.seek(framing.HEADER_SIZE)
        datum = read_datum(stream, _PARSED[writer], None if writer is model else own)
        if stream.tell() != len(payload):
            raise CodecError(f"{name}: {len(payload) - stream.tell()} bytes after the datum")
        return convert(datum, model)

    def decode_batch(payload: bytes) -> list[Any]:
        records = fastavro.reader(BytesIO(payload))
        writer = framing.model_of_schema_text(name, records.metadata.get("avro.schema"))
        if records.codec != "null":
            raise CodecError(f"{name}: container codec {records.codec!r}: compression is the runner's job")
        if writer is not model:  # resolve the other version through our reader schema
            records = fastavro.reader(BytesIO(payload), reader_schema=own)
        return convert(list(records), many)

    return CodecFunctions(encode, decode, encode_batch, decode_batch)


encode, decode, encode_batch, decode_batch = for_model(Reading)
