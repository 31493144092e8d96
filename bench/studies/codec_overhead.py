"""What a codec plugin adds: its speed against the same library called directly.

For every codec, a *direct recipe* does the same job as the plugin -- a ``Reading``
to the same bytes, and those bytes back to an equal ``Reading`` -- written straight
against the library, the way a user of that library would inline it, with nothing
from ``iotbench.codecs``. Both sides are timed with ``timeit`` on the same event in
the same process, interleaved (direct, plugin, direct, ...) so a noisy neighbour
hits both alike. The figure is the median of the per-pair ratios

    speed ratio = plugin speed / direct speed = direct time / plugin time

and the acceptance bar is >= 0.9 (the plugin adds at most ~10%). The recipes are
checked for equivalence (same bytes, same reading) before anything is timed, and by
tests/test_codec_overhead.py.

Run: ``python -m iotbench.studies.codec_overhead`` or ``iotbench codecs --overhead``.
"""

from __future__ import annotations

import os
import statistics
import timeit
from dataclasses import dataclass
from typing import Any, Sequence

from iotbench.codecs import CODECS
from iotbench.registry import PluginUnavailable
from iotbench.model.telemetry import Reading
from iotbench.studies.samples import BATCH, sample_readings

__all__ = ["OPS", "RECIPES", "OverheadRow", "direct_namespace", "overhead_rows", "same_job"]

_COMMON = """
from datetime import datetime, timedelta, timezone
from io import BytesIO
import msgspec
from msgspec.structs import asdict, astuple
from iotbench.model.telemetry import Reading
convert = msgspec.convert
"""


@dataclass(frozen=True)
class Recipe:
    setup: str  # runs once; defines what encode/decode use (``r`` is the event, ``rs`` a batch)
    encode: str  # a statement making ``p`` from ``r``
    decode: str  # a statement making ``out`` from ``p``
    encode_batch: str  # a statement making ``pb`` from ``rs``
    decode_batch: str  # a statement making ``outb`` from ``pb``


_ROW_TO_READING = ("Reading(device_id=x.device_id, seq=x.seq, observed_at=x.observed_at, "
                   "temperature_c=x.temperature_c, humidity_pct=x.humidity_pct, smoke_alarm=x.smoke_alarm, "
                   "water_leak=x.water_leak, battery_pct=x.battery_pct, schema_version=x.schema_version)")
_READING_TO_PROTO = ("device_id=r.device_id, seq=r.seq, observed_at={'seconds': s, 'nanos': us * 1000}, "
                     "temperature_c=r.temperature_c, humidity_pct=r.humidity_pct, smoke_alarm=r.smoke_alarm, "
                     "water_leak=r.water_leak, battery_pct=r.battery_pct, schema_version=r.schema_version")
_PROTO_TO_READING = ("Reading(device_id=m.device_id, seq=m.seq, "
                     "observed_at=EPOCH + timedelta(0, ts.seconds, ts.nanos // 1000), temperature_c=m.temperature_c, "
                     "humidity_pct=m.humidity_pct, smoke_alarm=m.smoke_alarm, water_leak=m.water_leak, "
                     "battery_pct=m.battery_pct, schema_version=m.schema_version)")


RECIPES: dict[str, Recipe] = {
    "avro": Recipe(
        """
import fastavro
from iotbench.codecs.schema import avro_schema
schema = fastavro.parse_schema(avro_schema(Reading))
canonical = fastavro.schema.to_parsing_canonical_form(avro_schema(Reading))
header = b"\\xc3\\x01" + bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))
writers = {header: schema}
write, read = fastavro.schemaless_writer, fastavro.schemaless_reader
""",
        "b = BytesIO(); b.write(header); write(b, schema, asdict(r)); p = b.getvalue()",
        "s = BytesIO(p); s.seek(10); out = convert(read(s, writers[p[:10]], None), Reading)",
        "b = BytesIO(); fastavro.writer(b, schema, [asdict(x) for x in rs], codec='null'); pb = b.getvalue()",
        "outb = convert(list(fastavro.reader(BytesIO(pb))), list[Reading])",
    ),
    "avro-official": Recipe(
        """
import json, avro.io, avro.schema, fastavro
from iotbench.codecs.schema import avro_schema
schema = avro.schema.parse(json.dumps(avro_schema(Reading)))
canonical = fastavro.schema.to_parsing_canonical_form(avro_schema(Reading))
header = b"\\xc3\\x01" + bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))
writer, readers = avro.io.DatumWriter(schema), {header: avro.io.DatumReader(schema, schema)}
from avro.datafile import DataFileReader, DataFileWriter
Encoder, Decoder = avro.io.BinaryEncoder, avro.io.BinaryDecoder
""",
        "b = BytesIO(); b.write(header); writer.write(asdict(r), Encoder(b)); p = b.getvalue()",
        "s = BytesIO(p); s.seek(10); out = convert(readers[p[:10]].read(Decoder(s)), Reading)",
        "b = BytesIO(); w = DataFileWriter(b, avro.io.DatumWriter(), schema, codec='null')\n"
        "for x in rs: w.append(asdict(x))\nw.flush(); pb = b.getvalue()",
        "outb = convert(list(DataFileReader(BytesIO(pb), avro.io.DatumReader(None, schema))), list[Reading])",
    ),
    "cbor": Recipe(
        "import cbor2\nCBORDecoder = cbor2.CBORDecoder",
        "p = cbor2.dumps(asdict(r), datetime_as_timestamp=True)",
        "s = BytesIO(p); v = CBORDecoder(s).decode(); assert s.tell() == len(p); out = convert(v, Reading)",
        "pb = cbor2.dumps([asdict(x) for x in rs], datetime_as_timestamp=True)",
        "s = BytesIO(pb); v = CBORDecoder(s).decode(); assert s.tell() == len(pb); outb = convert(v, list[Reading])",
    ),
    "json": Recipe(
        "enc = msgspec.json.Encoder(); dec = msgspec.json.Decoder(Reading); decb = msgspec.json.Decoder(list[Reading])",
        "p = enc.encode(r)",
        "out = dec.decode(p)",
        "pb = enc.encode(rs)",
        "outb = decb.decode(pb)",
    ),
    "json-orjson": Recipe(
        "import orjson",
        "p = orjson.dumps(r, default=asdict)",
        "out = convert(orjson.loads(p), Reading)",
        "pb = orjson.dumps(rs, default=asdict)",
        "outb = convert(orjson.loads(pb), list[Reading])",
    ),
    "json-stdlib": Recipe(
        "import json",
        "p = json.dumps(asdict(r), separators=(',', ':'), default=datetime.isoformat).encode()",
        "out = convert(json.loads(p), Reading)",
        "pb = json.dumps([asdict(x) for x in rs], separators=(',', ':'), default=datetime.isoformat).encode()",
        "outb = convert(json.loads(pb), list[Reading])",
    ),
    "msgpack": Recipe(
        "import msgpack\npacker = msgpack.Packer(datetime=True, default=asdict); unpackb = msgpack.unpackb",
        "p = packer.pack(r)",
        "out = convert(unpackb(p, timestamp=3), Reading)",
        "pb = packer.pack(rs)",
        "outb = convert(unpackb(pb, timestamp=3), list[Reading])",
    ),
    "msgpack-array": Recipe(
        """
Row = msgspec.defstruct("Row", [("device_id", str), ("seq", int), ("observed_at", datetime),
    ("temperature_c", float), ("humidity_pct", float), ("smoke_alarm", bool), ("water_leak", bool),
    ("battery_pct", float), ("schema_version", int, 1)], array_like=True, frozen=True)
enc = msgspec.msgpack.Encoder(); dec = msgspec.msgpack.Decoder(Row); decb = msgspec.msgpack.Decoder(list[Row])
""",
        "p = enc.encode(astuple(r))",
        f"x = dec.decode(p); out = {_ROW_TO_READING}",
        "pb = enc.encode([astuple(x) for x in rs])",
        f"outb = [{_ROW_TO_READING} for x in decb.decode(pb)]",
    ),
    "msgpack-msgspec": Recipe(
        "enc = msgspec.msgpack.Encoder(); dec = msgspec.msgpack.Decoder(Reading)\n"
        "decb = msgspec.msgpack.Decoder(list[Reading])",
        "p = enc.encode(r)",
        "out = dec.decode(p)",
        "pb = enc.encode(rs)",
        "outb = decb.decode(pb)",
    ),
    "protobuf": Recipe(
        """
from iotbench.codecs.schema import proto_messages
Message, Batch, _ = proto_messages(Reading)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc); US = timedelta(microseconds=1)
""",
        "s, us = divmod((r.observed_at - EPOCH) // US, 1_000_000); "
        f"p = Message({_READING_TO_PROTO}).SerializeToString()",
        f"m = Message.FromString(p); ts = m.observed_at; out = {_PROTO_TO_READING}",
        "b = Batch(); add = b.readings.add\nfor r in rs:\n"
        f"    s, us = divmod((r.observed_at - EPOCH) // US, 1_000_000); add({_READING_TO_PROTO})\n"
        "pb = b.SerializeToString()",
        "outb = []\nfor m in Batch.FromString(pb).readings:\n"
        f"    ts = m.observed_at; outb.append({_PROTO_TO_READING})",
    ),
}


def direct_namespace(name: str, reading: Reading, batch: Sequence[Reading] = ()) -> dict[str, Any]:
    """The recipe's globals after setup and one run of each statement.

    ``r`` is the event, ``p`` its payload, ``out`` the decoded reading; with a
    ``batch``, ``rs`` is the batch, ``pb`` its payload and ``outb`` the decoded list.
    """
    recipe = RECIPES[name]
    namespace: dict[str, Any] = {"r": reading, "rs": list(batch)}
    exec(_COMMON + recipe.setup, namespace)
    exec(recipe.encode, namespace)
    exec(recipe.decode, namespace)
    if batch:
        single = {k: namespace[k] for k in ("r", "p", "out")}
        exec(recipe.encode_batch, namespace)
        exec(recipe.decode_batch, namespace)
        namespace.update(single)  # a recipe's loop may rebind r
    return namespace


def same_job(name: str, codec: Any, reading: Reading, batch: Sequence[Reading]) -> str | None:
    """Why the direct recipe does not do the plugin's job, or None when it does.

    Same bytes (an Avro container's sync marker is random, so there the bytes are
    read across instead), and each side decodes the other's payload to the input.
    """
    try:
        direct = direct_namespace(name, reading, batch)
    except Exception as exc:  # a broken recipe is a finding, not a crash
        return f"{name}: the recipe fails: {type(exc).__name__}: {exc}"
    if direct["p"] != codec.encode(reading) or direct["out"] != reading or codec.decode(direct["p"]) != reading:
        return f"{name}: single event differs"
    plugin_batch = codec.encode_batch(batch)
    if not name.startswith("avro") and direct["pb"] != plugin_batch:
        return f"{name}: batch bytes differ"
    crossed = dict(direct, pb=plugin_batch)
    exec(RECIPES[name].decode_batch, crossed)
    if direct["outb"] != list(batch) or crossed["outb"] != list(batch) or codec.decode_batch(direct["pb"]) != list(batch):
        return f"{name}: batch round trip differs"
    return None


@dataclass(frozen=True)
class OverheadRow:
    codec: str
    op: str  # one of OPS
    direct_ns: float  # median per event
    plugin_ns: float
    ratio: float  # median of per-pair direct/plugin: plugin speed relative to direct; >= 0.9 passes
    repeats: int


def _calls(timer: timeit.Timer, budget_s: float) -> int:
    number, took = timer.autorange()
    return max(1, int(number * budget_s / max(took, 1e-9)))


def _pair(direct: timeit.Timer, plugin: timeit.Timer, number: int, plugin_first: bool) -> tuple[float, float]:
    """Seconds per call of each side: the best of 3 short runs, taken back to back.

    The best of a few runs drops the runs a neighbour interrupted; taking both sides
    back to back (in alternating order) exposes them to the same machine state.
    """
    def best(timer: timeit.Timer) -> float:
        return min(timer.repeat(3, number)) / number

    if plugin_first:
        p = best(plugin)
        return best(direct), p
    d = best(direct)
    return d, best(plugin)


OPS = ("encode", "decode", "encode_batch", "decode_batch")
_PLUGIN = {"encode": "p = encode(r)", "decode": "out = decode(p)", "encode_batch": "pb = encode_batch(rs)",
           "decode_batch": "outb = decode_batch(pb)"}


def overhead_rows(names: Sequence[str] | None = None, *, repeats: int = 31, budget_s: float = 0.003,
                  reading: Reading | None = None, ops: Sequence[str] = OPS) -> list[OverheadRow]:
    """Direct vs plugin per codec and op; ns are per event (codecs not installed here are skipped).

    ``repeats`` pairs per operation; the ratio is the median of the per-pair ratios.
    A batch holds ``BATCH`` readings of different devices.
    """
    sample = sample_readings(BATCH + 10)
    event = reading if reading is not None else sample[5]
    batch = sample[10:10 + BATCH]
    rows = []
    for name in names or [n for n in CODECS.names() if n in RECIPES]:
        try:
            codec = CODECS.load(name)
            direct = direct_namespace(name, event, batch)
        except (PluginUnavailable, ImportError):
            continue
        problem = same_job(name, codec, event, batch)
        if problem:
            raise AssertionError(f"the direct recipe does not do the plugin's job: {problem}")
        plugin = {"r": event, "rs": batch, "p": direct["p"], "pb": direct["pb"], "encode": codec.encode,
                  "decode": codec.decode, "encode_batch": codec.encode_batch, "decode_batch": codec.decode_batch}
        for op in ops:
            timers = (timeit.Timer(getattr(RECIPES[name], op), globals=dict(direct)),
                      timeit.Timer(_PLUGIN[op], globals=dict(plugin)))
            events = len(batch) if op.endswith("batch") else 1
            number = _calls(timers[0], budget_s)
            pairs = [_pair(*timers, number, plugin_first=bool(i % 2)) for i in range(repeats)]
            rows.append(OverheadRow(
                name, op, statistics.median(d for d, _ in pairs) * 1e9 / events,
                statistics.median(p for _, p in pairs) * 1e9 / events,
                statistics.median(d / p for d, p in pairs), repeats))
    return rows


def main(runs: int = 3) -> None:
    """Print the ratios as a Markdown table (what docs/codecs.md records), pinned to one core.

    Each of ``runs`` full passes gives one ratio per cell; the table shows their
    median and range, because one pass on a shared machine can be unlucky.
    """
    import sys

    from iotbench.machine import machine_info

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else runs
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    load_before = os.getloadavg()
    passes = [overhead_rows() for _ in range(runs)]
    print(f"machine: {machine_info()}; load average before/after: {load_before[0]:.1f}/{os.getloadavg()[0]:.1f}")
    print(f"{runs} runs x {passes[0][0].repeats} pairs per cell, pinned to one core")
    print()
    print("| codec | op | direct ns | plugin ns | plugin/direct speed (median of runs) | range | >= 0.9 |")
    print("| --- | --- | ---: | ---: | ---: | --- | --- |")
    for cells in zip(*passes):
        first = cells[0]
        ratio = statistics.median(c.ratio for c in cells)
        print(f"| {first.codec} | {first.op} | {statistics.median(c.direct_ns for c in cells):,.0f} | "
              f"{statistics.median(c.plugin_ns for c in cells):,.0f} | {ratio:.3f} | "
              f"{min(c.ratio for c in cells):.3f}-{max(c.ratio for c in cells):.3f} | {'yes' if ratio >= 0.9 else 'NO'} |")


if __name__ == "__main__":
    main()
