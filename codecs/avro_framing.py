"""How an Avro payload names its schema: single-object encoding and container headers.

Avro data carries no field names or types, so a reader needs the writer's schema.
A single event uses Avro single-object encoding (spec 1.12, "Single object
encoding"): ``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of the
writer schema's Parsing Canonical Form, then the schemaless datum. A batch is an
Avro object container with one block: its header embeds the writer schema in full.

Both Avro codecs share this module. Fingerprints come from fastavro's canonical
form, which follows the spec; the official ``avro`` 1.12 library leaves a logical
type as ``{"type":"long"}`` in its canonical form and so computes a different
fingerprint for any schema with a logical type (checked in tests/unit/test_codec_avro.py).

The known writer schemas are the reading's versions (``iotbench.codecs.schema``):
what a schema registry would hold. A payload naming any other schema is refused
before a byte of its data is read -- with an unknown schema, even the cost of
reading (a billion zero-byte items) is unbounded.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from fastavro.schema import fingerprint, to_parsing_canonical_form

from iotbench.codecs.base import CodecError
from iotbench.codecs.schema import ReadingV2, avro_schema
from iotbench.model.telemetry import Reading

__all__ = ["ERRORS", "MAGIC", "HEADER_SIZE", "MODELS", "header_of", "model_of_header", "model_of_schema_text"]

MAGIC = b"\xc3\x01"
HEADER_SIZE = 10
MODELS: tuple[type, ...] = (Reading, ReadingV2)
# What an Avro reader raises on hostile bytes: EOFError (cut short), ValueError (a string that is
# not UTF-8, a bad length; msgspec's ValidationError for a datum that is not a reading), IndexError
# (a union branch or enum symbol out of range), OverflowError (a timestamp past year 9999)
ERRORS: tuple[type[BaseException], ...] = (EOFError, ValueError, IndexError, OverflowError)


def _fingerprint(schema: Any) -> bytes:
    # fastavro returns the fingerprint's bytes in little-endian order, as hex
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


_BY_FINGERPRINT: dict[bytes, type] = {_fingerprint(avro_schema(m)): m for m in MODELS}
_HEADERS: dict[type, bytes] = {m: MAGIC + fp for fp, m in _BY_FINGERPRINT.items()}
_BY_HEADER: dict[bytes, type] = {h: m for m, h in _HEADERS.items()}


def header_of(model: type) -> bytes:
    """The 10-byte single-object header that starts every single-event payload of ``model``."""
    return _HEADERS[model]


def model_of_header(codec: str, payload: bytes) -> type:
    """The model whose schema wrote ``payload`` (single-object encoding), or a CodecError why not."""
    model = _BY_HEADER.get(payload[:HEADER_SIZE])
    if model is not None:
        return model
    if payload[:2] != MAGIC:
        raise CodecError(
            f"{codec}: not Avro single-object encoding (starts {payload[:2].hex() or 'empty'}, expected c301)"
        )
    raise CodecError(
        f"{codec}: unknown writer schema fingerprint {payload[2:HEADER_SIZE].hex()}: "
        "register the schema before sending data written with it"
    )


@functools.lru_cache(maxsize=8)  # bounded: hostile payloads cannot grow it
def _model_of_text(text: str) -> type | None:
    try:
        return _BY_FINGERPRINT.get(_fingerprint(json.loads(text)))
    except Exception:
        return None


def model_of_schema_text(codec: str, text: str | bytes | None) -> type:
    """The model whose schema a container header embeds, or a CodecError naming the problem."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    model = _model_of_text(text) if text else None
    if model is None:
        raise CodecError(f"{codec}: container written with an unknown schema: {str(text)[:120]!r}")
    return model
