"""Protocol Buffers (proto3, upb runtime) from ``telemetry.proto``.

The timestamp is the well-known ``google.protobuf.Timestamp`` (seconds + nanos),
filled with integer arithmetic: ``Timestamp.FromDatetime`` is pure Python and costs
more than the whole encode. Sub-microsecond nanos from a foreign writer are
truncated (the reading has microsecond resolution). A batch is one
``ReadingBatch`` with a repeated field.

Proto3 scalars have no presence: a field that is absent reads as its zero value.
The only message-typed field, ``observed_at``, does have presence, so a payload
without it (an empty one, or bytes that happen to parse) is refused as "not a
reading" instead of turning into a reading of zeros; likewise a batch without
readings (``b""`` parses as an empty ReadingBatch).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from google.protobuf.message import DecodeError
from msgspec.structs import asdict

from iotbench.codecs.base import CodecError, CodecFunctions
from iotbench.codecs.schema import proto_messages
from iotbench.model.telemetry import Reading

name = "protobuf"
label = "Protobuf (protobuf/upb)"
binary = True
library = "protobuf"
# upb raises DecodeError on bytes it cannot parse; the Timestamp arithmetic OverflowError on
# seconds past year 9999
errors = (DecodeError, OverflowError)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
NO_TIMESTAMP = f"{name}: no observed_at: not a telemetry reading (empty or foreign message)"


def _fields(reading: Any) -> dict[str, Any]:
    """The message's fields as a dict: a batch built from dicts is the cheapest way to fill the
    Timestamp sub-message and the repeated field (measured against messages and ``readings.add``)."""
    fields = asdict(reading)
    seconds, micros = divmod((reading.observed_at - EPOCH) // MICROSECOND, 1_000_000)
    fields["observed_at"] = {"seconds": seconds, "nanos": micros * 1000}
    return fields


def for_model(model: type) -> CodecFunctions:
    """Messages for ``model`` (``Reading`` -> ``Reading``, ``ReadingV2`` -> ``ReadingV2``)."""
    message: Any
    batch: Any
    message, batch, _ = proto_messages(model)
    parse, parse_batch = message.FromString, batch.FromString
    by_name = message.DESCRIPTOR.fields_by_name
    # the model's fields the message also has; one with presence that is absent takes the model's default
    shared = [f.name for f in msgspec.structs.fields(model) if f.name in by_name and f.name != "observed_at"]
    always = [f for f in shared if not by_name[f].has_presence]
    optional = [f for f in shared if by_name[f].has_presence]

    def copied(messages: Sequence[Any]) -> list[Any]:
        return [
            model(
                observed_at=_observed_at(m),
                **{f: getattr(m, f) for f in always},
                **{f: getattr(m, f) for f in optional if m.HasField(f)},
            )
            for m in messages
        ]

    from_messages = _readings if model is Reading else copied

    def encode(reading: Any) -> bytes:
        return message(**_fields(reading)).SerializeToString()

    def encode_batch(readings: Sequence[Any]) -> bytes:
        return batch(readings=[_fields(r) for r in readings]).SerializeToString()

    def decode(payload: bytes) -> Any:
        return from_messages((parse(payload),))[0]

    def decode_batch(payload: bytes) -> list[Any]:
        out = from_messages(parse_batch(payload).readings)
        if not out:  # b"" parses as an empty batch; the publisher never sends one
            raise CodecError(f"{name}: a batch without readings (empty or foreign payload)")
        return out

    return CodecFunctions(encode, decode, encode_batch, decode_batch)


def _observed_at(m: Any) -> datetime:
    ts = m.observed_at
    seconds, nanos = ts.seconds, ts.nanos
    # observed_at is the one field with presence in a v1 message: a message without it is not a
    # reading (HasField costs ~60 ns, so it is asked only when the timestamp reads as zero)
    if not (seconds or nanos) and not m.HasField("observed_at"):
        raise CodecError(NO_TIMESTAMP)
    return EPOCH + timedelta(0, seconds, nanos // 1000)


def _readings(messages: Sequence[Any]) -> list[Reading]:
    # Reading, the model every cell decodes, from v1 messages: _observed_at and the keyword arguments
    # written out in the loop. A generic copy costs ~900 ns more a reading (attrgetter into a dict: 2,250
    # against 1,375 ns a decoded reading), and even one function call a reading 8 % of a batch decode.
    # tests/contract/test_codec_contract.py checks that no field is left out.
    out: list[Reading] = []
    for m in messages:
        ts = m.observed_at
        seconds, nanos = ts.seconds, ts.nanos
        if not (seconds or nanos) and not m.HasField("observed_at"):
            raise CodecError(NO_TIMESTAMP)
        out.append(
            Reading(
                device_id=m.device_id,
                seq=m.seq,
                observed_at=EPOCH + timedelta(0, seconds, nanos // 1000),
                temperature_c=m.temperature_c,
                humidity_pct=m.humidity_pct,
                smoke_alarm=m.smoke_alarm,
                water_leak=m.water_leak,
                battery_pct=m.battery_pct,
                schema_version=m.schema_version,
            )
        )
    return out


encode, decode, encode_batch, decode_batch = for_model(Reading)
