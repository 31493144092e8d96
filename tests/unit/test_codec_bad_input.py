"""Oversized payloads, huge declared lengths and implausible readings, for every codec.

A decoder never trusts a length it reads: each payload below claims far more data
than it carries, and must be refused at once with a CodecError (peak RSS is checked
so a decoder that allocated what the header claimed would fail here). Readings that
decode but make no sense are the consumer's to reject: ``validate`` gives the reason.
"""

from __future__ import annotations

import os
import resource
from datetime import UTC

import msgspec
import pytest

from iotbench.codecs import CODECS, CodecError, get_codec
from iotbench.model.telemetry import validate

CODEC_NAMES = CODECS.names()

# claims of 2**32 - 1 items/bytes in each format's own length encoding
HUGE_CLAIMS = [
    b"\xdd\xff\xff\xff\xff" + b"\x80",  # msgpack array32
    b"\xdf\xff\xff\xff\xff" + b"\xa1a",  # msgpack map32
    b"\xdb\xff\xff\xff\xff" + b"abc",  # msgpack str32
    b"\x9b\x00\x00\x00\x00\xff\xff\xff\xff" + b"\x01",  # CBOR array, 8-byte length
    b"\x7b\x00\x00\x00\x00\xff\xff\xff\xff" + b"a",  # CBOR text, 8-byte length
    b"\x0a\xff\xff\xff\xff\x0f" + b"b0",  # protobuf field 1, length 2**32-1
    b"\x1a\xff\xff\xff\xff\x07" + b"\x08\x01",  # protobuf field 3 (message)
    b"\xc3\x01" + bytes.fromhex("b253cf27667a568b") + b"\xfe\xff\xff\xff\x1f",  # Avro string of 2**31 bytes
    b"Obj\x01\x04\x14avro.codec\x08null\x16avro.schema\xfe\xff\xff\xff\x1f",  # container header, huge schema
    b"[" * 100_000,  # nesting bomb
    b'{"device_id":"' + b"9" * 100_000,  # unterminated string
]


@pytest.mark.timeout(60)  # a decoder that believed a claim would hang or swap here
@pytest.mark.parametrize("name", CODEC_NAMES)
def test_huge_declared_lengths_are_refused_at_once(name):
    codec = get_codec(name)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for payload in HUGE_CLAIMS:
        for decode in (codec.decode, codec.decode_batch):
            with pytest.raises(CodecError):
                decode(payload)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_oversized_garbage_is_refused(name):
    codec = get_codec(name)
    payload = os.urandom(4 * 1024 * 1024)  # 4 MB: past Event Hubs' 1 MB publication limit
    for decode in (codec.decode, codec.decode_batch):
        with pytest.raises(CodecError):
            decode(payload)


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_big_valid_batch_still_decodes(name, readings):
    codec = get_codec(name)
    batch = readings * 20  # 10,000 readings in one payload: large is not hostile
    assert codec.decode_batch(codec.encode_batch(batch)) == batch


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_implausible_readings_decode_and_validate_gives_the_reason(name, readings):
    codec = get_codec(name)
    cases = {
        "humidity_pct": (150.0, "humidity_pct 150.0 outside 0..100"),
        "battery_pct": (-3.0, "battery_pct -3.0 outside 0..100"),
        "temperature_c": (412.5, "temperature_c 412.5 outside -60..100"),
        "device_id": ("", "device_id '' is empty"),
    }
    for field, (value, reason) in cases.items():
        bad = msgspec.structs.replace(readings[0], **{field: value})
        decoded = codec.decode(codec.encode(bad))
        assert decoded == bad
        assert validate(decoded).startswith(reason)


@pytest.mark.parametrize(
    "name", [n for n in CODEC_NAMES if n.startswith(("json", "msgpack", "cbor")) and n != "msgpack-array"]
)
def test_wrong_field_types_are_refused_by_self_describing_codecs(name, readings):
    # a map format carries types on the wire: a string where a float belongs is a CodecError
    codec = get_codec(name)
    fields = msgspec.structs.asdict(readings[0])
    fields["humidity_pct"] = "high"
    if name.startswith("json"):
        payload = msgspec.json.encode(fields)
    elif name == "cbor":
        import cbor2

        payload = cbor2.dumps(fields, datetime_as_timestamp=True)
    else:
        payload = msgspec.msgpack.encode(fields)
    with pytest.raises(CodecError, match="humidity_pct|Expected `float`"):
        codec.decode(payload)


def test_protobuf_tells_a_missing_timestamp_from_the_epoch(readings):
    from datetime import datetime

    from iotbench.codecs.schema import proto_messages
    from iotbench.model.telemetry import Reading

    codec = get_codec("protobuf")
    at_epoch = msgspec.structs.replace(readings[0], observed_at=datetime(1970, 1, 1, tzinfo=UTC))
    assert codec.decode(codec.encode(at_epoch)) == at_epoch
    assert codec.decode_batch(codec.encode_batch([at_epoch, readings[1]])) == [at_epoch, readings[1]]
    message, batch, _ = proto_messages(Reading)
    untimed = message(device_id="b0000-a001-s1", seq=3, temperature_c=20.0)
    with pytest.raises(CodecError, match="no observed_at"):
        codec.decode(untimed.SerializeToString())
    with pytest.raises(CodecError, match="no observed_at"):
        codec.decode_batch(batch(readings=[untimed]).SerializeToString())
