"""What a codec plugin adds: its speed against the same library called directly.

For a codec with a *direct recipe* (``RECIPES``), four plain functions do the plugin's
job with the library alone -- a ``Reading`` to the same bytes, and those bytes back to
an equal ``Reading`` -- written the way a user of that library would, with nothing from
``iotbench.codecs`` but the schema files. Where the library call alone does the job
(msgspec's ``Encoder.encode``), the recipe is that call, so neither side pays a Python
call the other does not. The plugin side is the codec as the harness loads it
(``get_codec``: declared errors turned into ``CodecError``), so its figure includes
that conversion.

Both sides are timed with ``timeit`` on the same event in the same process, interleaved
(direct, plugin, direct, ...) so a noisy neighbour hits both alike. The figure is the
median of the per-pair ratios

    speed ratio = plugin speed / direct speed = direct time / plugin time

The bar is >= 0.9 in a batch of ``BATCH`` (the plugin adds at most ~10 % where a gateway
spends its time); the single-event ratio is reported, not gated: one Python call (25-35 ns
here) is already a tenth of a 200 ns msgspec decode. Recipes are checked for equivalence
(same bytes, each side reads the other's payloads) before anything is timed. A codec
without a recipe -- one from an outside package, say -- is simply not in the table.

Run: ``python -m iotbench.studies.codec_overhead [RUNS]`` or ``iotbench codecs --overhead``.
"""

from __future__ import annotations

import os
import statistics
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

import msgspec
from msgspec.structs import asdict, astuple

from iotbench.codecs import CODECS
from iotbench.model.telemetry import Reading
from iotbench.registry import PluginUnavailable
from iotbench.studies.samples import BATCH, sample_readings

__all__ = ["BAR", "GATED", "OPS", "RECIPES", "OverheadRow", "Recipe", "overhead_rows", "same_job"]

OPS = ("encode", "decode", "encode_batch", "decode_batch")
GATED = ("encode_batch", "decode_batch")
"""The operations the >= 0.9 bar applies to; single-event ratios are reported only."""
BAR = 0.9

convert = msgspec.convert
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Recipe:
    """A codec's four jobs done with its library alone."""

    encode: Callable[[Reading], bytes]
    decode: Callable[[bytes], Reading]
    encode_batch: Callable[[Sequence[Reading]], bytes]
    decode_batch: Callable[[bytes], list[Reading]]


def _avro_header() -> bytes:
    import fastavro

    from iotbench.codecs.schema import avro_schema

    canonical = fastavro.schema.to_parsing_canonical_form(avro_schema(Reading))
    return b"\xc3\x01" + bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))


def _avro() -> Recipe:
    import fastavro

    from iotbench.codecs.schema import avro_schema

    schema = fastavro.parse_schema(avro_schema(Reading))
    header = _avro_header()
    writers = {header: schema}
    write, read = fastavro.schemaless_writer, fastavro.schemaless_reader

    def encode(r: Reading) -> bytes:
        out = BytesIO()
        out.write(header)
        write(out, schema, asdict(r))
        return out.getvalue()

    def decode(p: bytes) -> Reading:
        stream = BytesIO(p)
        stream.seek(10)
        return convert(read(stream, writers[p[:10]], None), Reading)

    def encode_batch(rs: Sequence[Reading]) -> bytes:
        out = BytesIO()
        fastavro.writer(out, schema, [asdict(r) for r in rs], codec="null")
        return out.getvalue()

    def decode_batch(p: bytes) -> list[Reading]:
        return convert(list(fastavro.reader(BytesIO(p))), list[Reading])

    return Recipe(encode, decode, encode_batch, decode_batch)


def _avro_official() -> Recipe:
    import json

    import avro.io
    import avro.schema
    from avro.datafile import DataFileReader, DataFileWriter

    from iotbench.codecs.schema import avro_schema

    schema = avro.schema.parse(json.dumps(avro_schema(Reading)))
    header = _avro_header()
    writer, readers = avro.io.DatumWriter(schema), {header: avro.io.DatumReader(schema, schema)}

    def encode(r: Reading) -> bytes:
        out = BytesIO()
        out.write(header)
        writer.write(asdict(r), avro.io.BinaryEncoder(out))
        return out.getvalue()

    def decode(p: bytes) -> Reading:
        stream = BytesIO(p)
        stream.seek(10)
        return convert(readers[p[:10]].read(avro.io.BinaryDecoder(stream)), Reading)

    def encode_batch(rs: Sequence[Reading]) -> bytes:
        out = BytesIO()
        container = DataFileWriter(out, avro.io.DatumWriter(), schema, codec="null")
        for r in rs:
            container.append(asdict(r))
        container.flush()
        return out.getvalue()

    def decode_batch(p: bytes) -> list[Reading]:
        return convert(list(DataFileReader(BytesIO(p), avro.io.DatumReader(None, schema))), list[Reading])

    return Recipe(encode, decode, encode_batch, decode_batch)


def _cbor() -> Recipe:
    import cbor2

    def encode(r: Reading) -> bytes:
        return cbor2.dumps(asdict(r), datetime_as_timestamp=True)

    def decode(p: bytes) -> Reading:
        stream = BytesIO(p)
        value = cbor2.CBORDecoder(stream).decode()
        assert stream.tell() == len(p)  # cbor2 ignores trailing bytes; the plugin refuses them
        return convert(value, Reading)

    def encode_batch(rs: Sequence[Reading]) -> bytes:
        return cbor2.dumps([asdict(r) for r in rs], datetime_as_timestamp=True)

    def decode_batch(p: bytes) -> list[Reading]:
        stream = BytesIO(p)
        value = cbor2.CBORDecoder(stream).decode()
        assert stream.tell() == len(p)
        return convert(value, list[Reading])

    return Recipe(encode, decode, encode_batch, decode_batch)


def _msgspec(protocol: Any) -> Callable[[], Recipe]:
    def recipe() -> Recipe:
        encoder = protocol.Encoder()
        return Recipe(
            encoder.encode, protocol.Decoder(Reading).decode, encoder.encode, protocol.Decoder(list[Reading]).decode
        )

    return recipe


def _orjson() -> Recipe:
    import orjson

    def encode(r: Any) -> bytes:
        return orjson.dumps(r, default=asdict)

    def decode(p: bytes) -> Reading:
        return convert(orjson.loads(p), Reading)

    def decode_batch(p: bytes) -> list[Reading]:
        return convert(orjson.loads(p), list[Reading])

    return Recipe(encode, decode, encode, decode_batch)


def _json_stdlib() -> Recipe:
    import json

    def encode(r: Reading) -> bytes:
        return json.dumps(asdict(r), separators=(",", ":"), default=datetime.isoformat).encode()

    def decode(p: bytes) -> Reading:
        return convert(json.loads(p), Reading)

    def encode_batch(rs: Sequence[Reading]) -> bytes:
        return json.dumps([asdict(r) for r in rs], separators=(",", ":"), default=datetime.isoformat).encode()

    def decode_batch(p: bytes) -> list[Reading]:
        return convert(json.loads(p), list[Reading])

    return Recipe(encode, decode, encode_batch, decode_batch)


def _msgpack() -> Recipe:
    import msgpack

    packer = msgpack.Packer(datetime=True, default=asdict)
    unpackb = msgpack.unpackb

    def decode(p: bytes) -> Reading:
        return convert(unpackb(p, timestamp=3), Reading)

    def decode_batch(p: bytes) -> list[Reading]:
        return convert(unpackb(p, timestamp=3), list[Reading])

    return Recipe(packer.pack, decode, packer.pack, decode_batch)


class _Row(msgspec.Struct, array_like=True, frozen=True):
    device_id: str
    seq: int
    observed_at: datetime
    temperature_c: float
    humidity_pct: float
    smoke_alarm: bool
    water_leak: bool
    battery_pct: float
    schema_version: int = 1


def _msgpack_array() -> Recipe:
    pack = msgspec.msgpack.Encoder().encode
    decode_row, decode_rows = msgspec.msgpack.Decoder(_Row).decode, msgspec.msgpack.Decoder(list[_Row]).decode

    def encode(r: Reading) -> bytes:
        return pack(astuple(r))

    def decode(p: bytes) -> Reading:
        x = decode_row(p)
        return Reading(
            device_id=x.device_id,
            seq=x.seq,
            observed_at=x.observed_at,
            temperature_c=x.temperature_c,
            humidity_pct=x.humidity_pct,
            smoke_alarm=x.smoke_alarm,
            water_leak=x.water_leak,
            battery_pct=x.battery_pct,
            schema_version=x.schema_version,
        )

    def encode_batch(rs: Sequence[Reading]) -> bytes:
        return pack([astuple(r) for r in rs])

    def decode_batch(p: bytes) -> list[Reading]:
        return [
            Reading(
                device_id=x.device_id,
                seq=x.seq,
                observed_at=x.observed_at,
                temperature_c=x.temperature_c,
                humidity_pct=x.humidity_pct,
                smoke_alarm=x.smoke_alarm,
                water_leak=x.water_leak,
                battery_pct=x.battery_pct,
                schema_version=x.schema_version,
            )
            for x in decode_rows(p)
        ]

    return Recipe(encode, decode, encode_batch, decode_batch)


def _protobuf() -> Recipe:
    from iotbench.codecs.schema import proto_messages

    message: Any
    batch: Any
    message, batch, _ = proto_messages(Reading)

    def fields(r: Reading) -> dict[str, Any]:
        s, us = divmod((r.observed_at - EPOCH) // MICROSECOND, 1_000_000)
        return {
            "device_id": r.device_id,
            "seq": r.seq,
            "observed_at": {"seconds": s, "nanos": us * 1000},
            "temperature_c": r.temperature_c,
            "humidity_pct": r.humidity_pct,
            "smoke_alarm": r.smoke_alarm,
            "water_leak": r.water_leak,
            "battery_pct": r.battery_pct,
            "schema_version": r.schema_version,
        }

    def encode(r: Reading) -> bytes:
        s, us = divmod((r.observed_at - EPOCH) // MICROSECOND, 1_000_000)
        return message(
            device_id=r.device_id,
            seq=r.seq,
            observed_at={"seconds": s, "nanos": us * 1000},
            temperature_c=r.temperature_c,
            humidity_pct=r.humidity_pct,
            smoke_alarm=r.smoke_alarm,
            water_leak=r.water_leak,
            battery_pct=r.battery_pct,
            schema_version=r.schema_version,
        ).SerializeToString()

    def decode(p: bytes) -> Reading:
        m = message.FromString(p)
        ts = m.observed_at
        return Reading(
            device_id=m.device_id,
            seq=m.seq,
            observed_at=EPOCH + timedelta(0, ts.seconds, ts.nanos // 1000),
            temperature_c=m.temperature_c,
            humidity_pct=m.humidity_pct,
            smoke_alarm=m.smoke_alarm,
            water_leak=m.water_leak,
            battery_pct=m.battery_pct,
            schema_version=m.schema_version,
        )

    def encode_batch(rs: Sequence[Reading]) -> bytes:
        return batch(readings=[fields(r) for r in rs]).SerializeToString()

    def decode_batch(p: bytes) -> list[Reading]:
        out = []
        for m in batch.FromString(p).readings:
            ts = m.observed_at
            out.append(
                Reading(
                    device_id=m.device_id,
                    seq=m.seq,
                    observed_at=EPOCH + timedelta(0, ts.seconds, ts.nanos // 1000),
                    temperature_c=m.temperature_c,
                    humidity_pct=m.humidity_pct,
                    smoke_alarm=m.smoke_alarm,
                    water_leak=m.water_leak,
                    battery_pct=m.battery_pct,
                    schema_version=m.schema_version,
                )
            )
        return out

    return Recipe(encode, decode, encode_batch, decode_batch)


RECIPES: dict[str, Callable[[], Recipe]] = {
    # keep sorted; each builds its recipe on first use (its library may not be installed here)
    "avro": _avro,
    "avro-official": _avro_official,
    "cbor": _cbor,
    "json": _msgspec(msgspec.json),
    "json-orjson": _orjson,
    "json-stdlib": _json_stdlib,
    "msgpack": _msgpack,
    "msgpack-array": _msgpack_array,
    "msgpack-msgspec": _msgspec(msgspec.msgpack),
    "protobuf": _protobuf,
}
"""Registry name -> the direct recipe's builder, for the built-in codecs."""


def same_job(
    name: str, codec: Any, reading: Reading, batch: Sequence[Reading], recipe: Recipe | None = None
) -> str | None:
    """Why the direct recipe does not do the plugin's job, or None when it does.

    Same bytes (an Avro container's sync marker is random, so there the bytes are
    read across instead), and each side decodes the other's payload to the input.
    """
    batch = list(batch)
    try:
        direct = recipe or RECIPES[name]()
        payload, batch_payload = direct.encode(reading), direct.encode_batch(batch)
        decoded, decoded_batch = direct.decode(payload), direct.decode_batch(batch_payload)
        plugin_batch = codec.encode_batch(batch)
        crossed = direct.decode_batch(plugin_batch)
    except Exception as exc:  # a broken recipe is a finding, not a crash
        return f"{name}: the recipe fails: {type(exc).__name__}: {exc}"
    if payload != codec.encode(reading) or decoded != reading or codec.decode(payload) != reading:
        return f"{name}: single event differs"
    if not name.startswith("avro") and batch_payload != plugin_batch:
        return f"{name}: batch bytes differ"
    if decoded_batch != batch or crossed != batch or codec.decode_batch(batch_payload) != batch:
        return f"{name}: batch round trip differs"
    return None


@dataclass(frozen=True)
class OverheadRow:
    codec: str
    op: str  # one of OPS
    direct_ns: float  # median per event
    plugin_ns: float
    ratio: float  # median of per-pair direct/plugin: plugin speed relative to direct
    repeats: int
    gated: bool  # whether the >= 0.9 bar applies (a batch op)


def _calls(timer: timeit.Timer, budget_s: float) -> int:
    """How many calls fill about ``budget_s`` (calibrated on doubling runs, not timeit's 0.2 s autorange)."""
    number = 1
    while True:
        took = timer.timeit(number)
        if took >= budget_s / 4 or number >= 1 << 20:
            return max(1, int(number * budget_s / max(took, 1e-9)))
        number *= 2


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


def overhead_rows(
    names: Sequence[str] | None = None,
    *,
    repeats: int = 31,
    budget_s: float = 0.003,
    reading: Reading | None = None,
    ops: Sequence[str] = OPS,
) -> list[OverheadRow]:
    """Direct vs plugin per codec and op; ns are per event.

    Codecs not installed here, and codecs without a direct recipe, are skipped. ``repeats``
    pairs per operation; the ratio is the median of the per-pair ratios. A batch holds
    ``BATCH`` readings of different devices.
    """
    sample = sample_readings(BATCH + 10)
    event = reading if reading is not None else sample[5]
    batch = sample[10 : 10 + BATCH]
    rows = []
    for name in names or CODECS.names():
        if name not in RECIPES:
            continue
        try:
            codec = CODECS.load(name)
            recipe = RECIPES[name]()
        except (PluginUnavailable, ImportError):
            continue
        problem = same_job(name, codec, event, batch, recipe)
        if problem:
            raise AssertionError(f"the direct recipe does not do the plugin's job: {problem}")
        args = {
            "encode": event,
            "decode": recipe.encode(event),
            "encode_batch": batch,
            "decode_batch": recipe.encode_batch(batch),
        }
        for op in ops:
            timers = (
                timeit.Timer("f(x)", globals={"f": getattr(recipe, op), "x": args[op]}),
                timeit.Timer("f(x)", globals={"f": getattr(codec, op), "x": args[op]}),
            )
            events = len(batch) if op.endswith("batch") else 1
            number = _calls(timers[0], budget_s)
            pairs = [_pair(*timers, number, plugin_first=bool(i % 2)) for i in range(repeats)]
            rows.append(
                OverheadRow(
                    name,
                    op,
                    statistics.median(d for d, _ in pairs) * 1e9 / events,
                    statistics.median(p for _, p in pairs) * 1e9 / events,
                    statistics.median(d / p for d, p in pairs),
                    repeats,
                    op in GATED,
                )
            )
    return rows


def main(runs: int = 3) -> None:
    """Print the ratios as a Markdown table (what docs/codecs.md records), pinned to one core.

    Each of ``runs`` full passes gives one ratio per cell; the table shows their
    median and range, because one pass on a shared machine can be unlucky.
    """
    import sys
    import time

    from iotbench.machine import machine_info

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else runs
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    passes = [overhead_rows() for _ in range(runs)]
    print(
        f"machine: {machine_info()}; {started}; load average before/after: "
        f"{load_before[0]:.1f}/{os.getloadavg()[0]:.1f}"
    )
    print(f"{runs} runs x {passes[0][0].repeats} pairs per cell, pinned to one core")
    unmeasured = [n for n in CODECS.names() if n not in RECIPES]
    if unmeasured:
        print(f"no direct recipe (not measured): {', '.join(unmeasured)}")
    print()
    print(f"| codec | op | direct ns | plugin ns | plugin/direct speed (median of runs) | range | >= {BAR} |")
    print("| --- | --- | ---: | ---: | ---: | --- | --- |")
    for cells in zip(*passes, strict=True):
        first = cells[0]
        ratio = statistics.median(c.ratio for c in cells)
        verdict = ("yes" if ratio >= BAR else "NO") if first.gated else "(not gated)"
        print(
            f"| {first.codec} | {first.op} | {statistics.median(c.direct_ns for c in cells):,.0f} | "
            f"{statistics.median(c.plugin_ns for c in cells):,.0f} | {ratio:.3f} | "
            f"{min(c.ratio for c in cells):.3f}-{max(c.ratio for c in cells):.3f} | {verdict} |"
        )


if __name__ == "__main__":
    main()
