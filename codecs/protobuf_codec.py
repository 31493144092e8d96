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

import textwrap
from datetime import datetime, timedelta, timezone
from typing import Any

from google.protobuf.message import DecodeError
from msgspec.structs import replace

from iotbench.codecs.base import CodecError, CodecFunctions, decode_failure
from iotbench.codecs.msgspec_support import compile_functions, keyword_arguments
from iotbench.codecs.schema import proto_messages
from iotbench.model.telemetry import Reading

name = "protobuf"
label = "Protobuf (protobuf/upb)"
binary = True
library = "protobuf"

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)

# The four functions are generated per model (see compile_functions): fields are
# copied with literal keyword arguments, the hot paths make no further Python calls,
# and a batch is built in place with ``readings.add`` (25% faster than a list of
# messages, which the batch copies). A dict is the cheapest way to fill the
# Timestamp sub-message (measured against Timestamp(...) and attribute sets).
_STAMP = "seconds, micros = divmod((r.observed_at - EPOCH) // MICROSECOND, 1_000_000)"
_FIELDS_OUT = '%(to_message)s, observed_at={"seconds": seconds, "nanos": micros * 1000}'
# reading <- message m; a message without observed_at is not a reading
# (HasField costs ~60 ns, so it is only asked when the timestamp reads as all zeros)
_TAKE = """\
ts = m.observed_at
seconds, nanos = ts.seconds, ts.nanos
if not (seconds or nanos) and not m.HasField("observed_at"):
    raise CodecError(NO_TIMESTAMP)
reading = model(%(from_message)s, observed_at=EPOCH + timedelta(0, seconds, nanos // 1000))
%(finish)s"""

_SOURCE = f"""
def encode(r):
    {_STAMP}
    return message({_FIELDS_OUT}).SerializeToString()

def encode_batch(readings):
    out = batch()
    add = out.readings.add
    for r in readings:
        {_STAMP}
        add({_FIELDS_OUT})
    return out.SerializeToString()

def decode(payload):
    try:
        m = parse(payload)
%(take_8)s
    except CodecError:
        raise
    except FAILURES as exc:
        raise decode_failure(name, exc) from None
    return reading

def decode_batch(payload):
    out = []
    try:
        for m in parse_batch(payload).readings:
%(take_12)s
            out.append(reading)
    except CodecError:
        raise
    except FAILURES as exc:
        raise decode_failure(name, exc) from None
    if not out:  # b"" parses as an empty batch; the publisher never sends one
        raise CodecError(f"{{name}}: a batch without readings (empty or foreign payload)")
    return out
"""


def for_model(model: type) -> CodecFunctions:
    """Messages for ``model`` (``Reading`` -> ``Reading``, ``ReadingV2`` -> ``ReadingV2``)."""
    message, batch, _ = proto_messages(model)
    by_name = message.DESCRIPTOR.fields_by_name
    # the model's fields the message also has (a v1 message read as v2 lacks some)
    shared = [f for f in model.__struct_fields__ if f in by_name and f != "observed_at"]
    always = [f for f in shared if not by_name[f].has_presence]
    optional = [f for f in shared if by_name[f].has_presence]  # absent -> the model's default

    def with_present(m: Any, reading: Any) -> Any:
        present = {f: getattr(m, f) for f in optional if m.HasField(f)}
        return replace(reading, **present) if present else reading

    take = _TAKE % {"from_message": keyword_arguments(always, "m"),
                    "finish": "reading = with_present(m, reading)" if optional else ""}  # v1 pays nothing
    source = _SOURCE % {"to_message": keyword_arguments(shared, "r"),
                        "take_8": textwrap.indent(take, " " * 8), "take_12": textwrap.indent(take, " " * 12)}
    functions = compile_functions(source, {
        "message": message, "batch": batch, "parse": message.FromString, "parse_batch": batch.FromString,
        "model": model, "name": name, "EPOCH": EPOCH, "MICROSECOND": MICROSECOND, "timedelta": timedelta,
        "with_present": with_present, "CodecError": CodecError, "decode_failure": decode_failure,
        "FAILURES": (DecodeError, OverflowError, ValueError),
        "NO_TIMESTAMP": f"{name}: no observed_at: not a telemetry reading (empty or foreign message)",
    })
    return CodecFunctions(functions["encode"], functions["decode"], functions["encode_batch"],
                          functions["decode_batch"])


encode, decode, encode_batch, decode_batch = for_model(Reading)
