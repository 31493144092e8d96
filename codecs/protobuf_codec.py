"""Protocol Buffers (proto3, upb runtime) from ``telemetry.proto``.

The timestamp is the well-known ``google.protobuf.Timestamp`` (seconds + nanos),
filled with integer arithmetic: ``Timestamp.FromDatetime`` is pure Python and costs
more than the whole encode. A batch is one ``ReadingBatch`` with a repeated field.

Proto3 scalars have no presence: a field that is absent reads as its zero value.
The only message-typed field, ``observed_at``, does have presence, so a payload
without it (an empty one, or bytes that happen to parse) is refused as "not a
reading" instead of turning into a reading of zeros; likewise a batch without
readings (``b""`` parses as an empty ReadingBatch).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from operator import attrgetter
from typing import Any, Sequence

from google.protobuf.message import DecodeError
from msgspec.structs import asdict

from iotbench.codecs.base import CodecError, CodecFunctions, decode_failure
from iotbench.codecs.schema import proto_messages
from iotbench.telemetry import Reading

name = "protobuf"
label = "Protobuf (protobuf/upb)"
binary = True
library = "protobuf"

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)


def for_model(model: type) -> CodecFunctions:
    """Messages for ``model`` (``Reading`` -> ``Reading``, ``ReadingV2`` -> ``ReadingV2``)."""
    message, batch, timestamp = proto_messages(model)
    by_name = message.DESCRIPTOR.fields_by_name
    # fields that read the same as the model's: the model's fields the message also has
    shared = [f for f in model.__struct_fields__ if f in by_name and f != "observed_at"]
    always = [f for f in shared if not by_name[f].has_presence]
    optional = [f for f in shared if by_name[f].has_presence]  # absent -> the model's default
    get_always = attrgetter(*always)

    def to_message_fields(reading: Any) -> dict[str, Any]:
        fields = asdict(reading)
        seconds, micros = divmod((fields.pop("observed_at") - EPOCH) // MICROSECOND, 1_000_000)
        fields["observed_at"] = timestamp(seconds=seconds, nanos=micros * 1000)
        return fields

    def to_model(m: Any) -> Any:
        if not m.HasField("observed_at"):
            raise CodecError(f"{name}: no observed_at: not a telemetry reading (empty or foreign message)")
        fields = dict(zip(always, get_always(m)))
        for f in optional:
            if m.HasField(f):
                fields[f] = getattr(m, f)
        ts = m.observed_at
        fields["observed_at"] = EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)
        return model(**fields)

    def encode(reading: Any) -> bytes:
        return message(**to_message_fields(reading)).SerializeToString()

    def encode_batch(readings: Sequence[Any]) -> bytes:
        out = batch()
        add = out.readings.add
        for reading in readings:
            add(**to_message_fields(reading))
        return out.SerializeToString()

    def decode(payload: bytes) -> Any:
        try:
            return to_model(message.FromString(payload))
        except CodecError:
            raise
        except (DecodeError, OverflowError, ValueError) as exc:
            raise decode_failure(name, exc) from None

    def decode_batch(payload: bytes) -> list[Any]:
        try:
            readings = [to_model(m) for m in batch.FromString(payload).readings]
        except CodecError:
            raise
        except (DecodeError, OverflowError, ValueError) as exc:
            raise decode_failure(name, exc) from None
        if not readings:  # b"" parses as an empty batch; the publisher never sends one
            raise CodecError(f"{name}: a batch without readings (empty or foreign payload)")
        return readings

    return CodecFunctions(encode, decode, encode_batch, decode_batch)


encode, decode, encode_batch, decode_batch = for_model(Reading)
