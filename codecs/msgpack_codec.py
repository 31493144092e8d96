"""MessagePack through msgspec: the same map of field names as JSON, in binary."""

from __future__ import annotations

from typing import Sequence

import msgspec

from iotbench.codecs.base import CodecError
from iotbench.telemetry import Reading

name = "msgpack"
label = "MessagePack (msgspec)"
binary = True
library = "msgspec"

_encoder = msgspec.msgpack.Encoder()
_decode_one = msgspec.msgpack.Decoder(Reading).decode
_decode_many = msgspec.msgpack.Decoder(list[Reading]).decode


def encode(reading: Reading) -> bytes:
    return _encoder.encode(reading)


def encode_batch(readings: Sequence[Reading]) -> bytes:
    return _encoder.encode(readings)


def decode(payload: bytes) -> Reading:
    try:
        return _decode_one(payload)
    except msgspec.DecodeError as exc:
        raise CodecError(f"msgpack: {exc}") from None


def decode_batch(payload: bytes) -> list[Reading]:
    try:
        return _decode_many(payload)
    except msgspec.DecodeError as exc:
        raise CodecError(f"msgpack: {exc}") from None
