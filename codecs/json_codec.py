"""JSON through msgspec: the fast path for the format the reference project used."""

from __future__ import annotations

from typing import Sequence

import msgspec

from iotbench.codecs.base import CodecError
from iotbench.telemetry import Reading

name = "json"
label = "JSON (msgspec)"
binary = False
library = "msgspec"

_encoder = msgspec.json.Encoder()
_decode_one = msgspec.json.Decoder(Reading).decode
_decode_many = msgspec.json.Decoder(list[Reading]).decode


def encode(reading: Reading) -> bytes:
    return _encoder.encode(reading)


def encode_batch(readings: Sequence[Reading]) -> bytes:
    return _encoder.encode(readings)


def decode(payload: bytes) -> Reading:
    try:
        return _decode_one(payload)
    except msgspec.DecodeError as exc:
        raise CodecError(f"json: {exc}") from None


def decode_batch(payload: bytes) -> list[Reading]:
    try:
        return _decode_many(payload)
    except msgspec.DecodeError as exc:
        raise CodecError(f"json: {exc}") from None
