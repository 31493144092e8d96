"""Avro framing: single-object encoding names the schema, a batch is a container, both libraries agree."""

from __future__ import annotations

import io
import json

import fastavro
import pytest

from iotbench.codecs import CodecError, get_codec
from iotbench.codecs.avro_framing import HEADER_SIZE, MAGIC, header_of
from iotbench.codecs.schema import ReadingV2, avro_schema
from iotbench.model.telemetry import Reading

AVRO = ("avro", "avro-official")


def test_crc64_avro_fingerprint_matches_the_spec_vector():
    # Avro spec test vector: the fingerprint of "null" is 0x63dd24e7cc258f8a (little-endian on the wire)
    assert fastavro.schema.fingerprint('"null"', "CRC-64-AVRO") == "8a8f25cce724dd63"


@pytest.mark.parametrize("name", AVRO)
def test_single_event_is_single_object_encoding(name, readings):
    payload = get_codec(name).encode(readings[0])
    canonical = fastavro.schema.to_parsing_canonical_form(avro_schema(Reading))
    assert payload[:2] == MAGIC
    assert payload[2:HEADER_SIZE] == bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))
    # the rest is the bare datum: fastavro reads it with the schema alone
    datum = fastavro.schemaless_reader(io.BytesIO(payload[HEADER_SIZE:]), fastavro.parse_schema(avro_schema(Reading)))
    assert datum["device_id"] == readings[0].device_id
    assert header_of(Reading) != header_of(ReadingV2)


@pytest.mark.parametrize("name", AVRO)
def test_batch_is_one_uncompressed_container_block(name, readings):
    payload = get_codec(name).encode_batch(readings[:10])
    reader = fastavro.reader(io.BytesIO(payload))
    assert payload[:4] == b"Obj\x01"
    assert reader.codec == "null"
    assert json.loads(reader.metadata["avro.schema"])["name"].endswith("Reading")
    assert len(list(reader)) == 10


@pytest.mark.parametrize("writer", AVRO)
@pytest.mark.parametrize("reader", AVRO)
def test_the_two_libraries_read_each_others_bytes(writer, reader, readings):
    w, r = get_codec(writer), get_codec(reader)
    assert r.decode(w.encode(readings[3])) == readings[3]
    assert r.decode_batch(w.encode_batch(readings[:20])) == readings[:20]


@pytest.mark.parametrize("name", AVRO)
def test_unknown_fingerprint_is_refused_before_reading(name, readings):
    codec = get_codec(name)
    payload = bytearray(codec.encode(readings[0]))
    payload[5] ^= 0xFF
    with pytest.raises(CodecError, match="unknown writer schema fingerprint"):
        codec.decode(bytes(payload))
    with pytest.raises(CodecError, match="not Avro single-object encoding"):
        codec.decode(b"\x00\x01" + bytes(payload[2:]))


@pytest.mark.parametrize("name", AVRO)
def test_trailing_bytes_are_refused(name, readings):
    codec = get_codec(name)
    with pytest.raises(CodecError, match="bytes after the datum"):
        codec.decode(codec.encode(readings[0]) + b"\x00")


def _container(schema, records, codec="null") -> bytes:
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(schema), records, codec=codec)
    return out.getvalue()


@pytest.mark.parametrize("name", AVRO)
def test_container_with_compression_or_unknown_schema_is_refused(name):
    codec = get_codec(name)
    record = {
        "device_id": "d",
        "seq": 1,
        "observed_at": 0,
        "temperature_c": 1.0,
        "humidity_pct": 1.0,
        "smoke_alarm": False,
        "water_leak": False,
        "battery_pct": 1.0,
        "schema_version": 1,
    }
    with pytest.raises(CodecError, match="compression is the runner's job"):
        codec.decode_batch(_container(avro_schema(Reading), [record], codec="deflate"))
    # an array of nulls costs zero bytes per item: a reader that trusted any schema could spin forever
    with pytest.raises(CodecError, match="unknown schema"):
        codec.decode_batch(_container({"type": "array", "items": "null"}, [[None] * 3]))
