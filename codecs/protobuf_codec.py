"""Protocol Buffers (proto3, upb runtime) from ``telemetry.proto``.

The timestamp is the well-known ``google.protobuf.Timestamp`` (seconds + nanos),
filled with integer arithmetic: ``Timestamp.FromDatetime`` is pure Python and costs
more than the whole encode. Sub-microsecond nanos from a foreign writer are
truncated (the reading has microsecond resolution). A batch is one ``ReadingBatch`` with a repeated field.

Proto3 scalars have no presence: a field that is absent reads as its zero value.
The only message-typed field, ``observed_at``, does have presence, so a payload
without it (an empty one, or bytes that happen to parse) is refused as "not a
reading" instead of turning into a reading of zeros; likewise a batch without
readings (``b""`` parses as an empty ReadingBatch).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from google.protobuf.message import DecodeError
from msgspec.structs import replace

from iotbench.codecs.base import CodecError, CodecFunctions, decode_failure
from iotbench.codecs.msgspec_support import compile_functions, keyword_arguments
from iotbench.codecs.schema import proto_messages
from iotbench.telemetry import Reading

name = "protobuf"
label = "Protobuf (protobuf/upb)"
binary = True
library = "protobuf"

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)


# Generated per model (see compile_functions): the decoders copy fields with literal
# keyword arguments. _TAKE checks presence and builds the reading from message m.
_TAKE = """if not m.HasField("observed_at"):
        raise CodecError(NO_TIMESTAMP)
    ts = m.observed_at
    reading = model(%(fields)s, observed_at=EPOCH + timedelta(0, ts.seconds, ts.nanos // 1000))"""

_DECODERS = """
def to_model(m):
    %(take_here)s
    return %(finish)s

def decode(payload):
    try:
        m = parse(payload)
    except FAILURES as exc:
        raise decode_failure(name, exc) from None
    try:
        %(take_in_try)s
    except OVERFLOWS as exc:
        raise decode_failure(name, exc) from None
    return %(finish)s

def decode_batch(payload):
    try:
        readings = [to_model(m) for m in parse_batch(payload).readings]
    except CodecError:
        raise
    except FAILURES + OVERFLOWS as exc:
        raise decode_failure(name, exc) from None
    if not readings:  # b"" parses as an empty batch; the publisher never sends one
        raise CodecError(f"{name}: a batch without readings (empty or foreign payload)")
    return readings
"""


def for_model(model: type) -> CodecFunctions:
    """Messages for ``model`` (``Reading`` -> ``Reading``, ``ReadingV2`` -> ``ReadingV2``)."""
    message, batch, _ = proto_messages(model)
    by_name = message.DESCRIPTOR.fields_by_name
    # the model's fields the message also has (a v1 message read as v2 lacks some)
    shared = [f for f in model.__struct_fields__ if f in by_name and f != "observed_at"]
    always = [f for f in shared if not by_name[f].has_presence]
    optional = [f for f in shared if by_name[f].has_presence]  # absent -> the model's default
    to_message = compile_functions(
        f"def to_message(r, observed_at):\n    return message({keyword_arguments(shared, 'r', ['observed_at'])})\n",
        {"message": message})["to_message"]

    def with_present(m: Any, reading: Any) -> Any:
        present = {f: getattr(m, f) for f in optional if m.HasField(f)}
        return replace(reading, **present) if present else reading

    take = _TAKE % {"fields": keyword_arguments(always, "m")}
    decoders = compile_functions(_DECODERS % {
        "take_here": take, "take_in_try": take.replace("\n", "\n    "),
        "finish": "with_present(m, reading)" if optional else "reading",  # v1 pays nothing
    }, {
        "parse": message.FromString, "parse_batch": batch.FromString, "model": model, "name": name,
        "EPOCH": EPOCH, "timedelta": timedelta, "with_present": with_present, "CodecError": CodecError,
        "decode_failure": decode_failure, "FAILURES": (DecodeError,), "OVERFLOWS": (OverflowError, ValueError),
        "NO_TIMESTAMP": f"{name}: no observed_at: not a telemetry reading (empty or foreign message)",
    })

    def message_of(reading: Any) -> Any:
        seconds, micros = divmod((reading.observed_at - EPOCH) // MICROSECOND, 1_000_000)
        # a dict for the sub-message is the cheapest way in (measured: faster than
        # Timestamp(...) or setting ts.seconds/ts.nanos after construction)
        return to_message(reading, {"seconds": seconds, "nanos": micros * 1000})

    def encode(reading: Any) -> bytes:
        return message_of(reading).SerializeToString()

    def encode_batch(readings: Sequence[Any]) -> bytes:
        return batch(readings=[message_of(r) for r in readings]).SerializeToString()

    return CodecFunctions(encode, decoders["decode"], encode_batch, decoders["decode_batch"])


encode, decode, encode_batch, decode_batch = for_model(Reading)
