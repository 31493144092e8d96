"""Schema evolution: can a v2 reader read v1 data, and a v1 reader read v2 data?

Version 2 of the reading (``iotbench.codecs.schema.ReadingV2``) removes
``battery_pct`` and adds ``firmware`` with a default. A fleet upgrades a device at a
time, so for months both versions arrive together; each codec is asked, in both
directions and for both framings, to decode what the other version wrote with its
own ``for_model``. Each answer is one of:

- ``ok``: read; every shared field exact; the field the data lacks takes the
  reader's declared default.
- ``invented``: read, but a field the data lacks got a value the reader never
  declared (proto3's zero values): the wrong answer with no error.
- ``wrong``: read, but a shared field differs (positions shifted).
- ``error``: refused with a CodecError (the detail says why) -- the loud failure.
- ``unavailable``: the codec's library is not installed here; ``unsupported``: the
  codec declares no ``for_model`` (an optional part of the contract: ``iotbench.codecs.base.OPTIONAL``).

``evolution_table()`` returns the rows as data; ``iotbench codecs --evolution``
prints them and the report renders them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from iotbench.codecs import CODECS
from iotbench.codecs.base import CodecError, CodecFunctions
from iotbench.codecs.schema import ADDED, REMOVED, ReadingV2
from iotbench.model.telemetry import Reading
from iotbench.registry import PluginUnavailable

__all__ = ["DIRECTIONS", "FRAMINGS", "SUMMARY", "EvolutionRow", "evolution_table", "judge", "sample_readings"]

DIRECTIONS = ("v2 reads v1", "v1 reads v2")
FRAMINGS = ("single", "batch")
SUMMARY = f"v2 = v1 - {REMOVED} + {ADDED} (with a default)"


@dataclass(frozen=True)
class EvolutionRow:
    codec: str
    direction: str  # one of DIRECTIONS
    framing: str  # "single" or "batch"
    outcome: str  # ok | invented | wrong | error | unavailable | unsupported
    detail: str


def sample_readings() -> tuple[Reading, ReadingV2]:
    """The same observation as a v1 and as a v2 reading."""
    observed = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    common: dict[str, Any] = dict(
        device_id="b0042-a017-s1",
        seq=7,
        observed_at=observed,
        temperature_c=21.37,
        humidity_pct=43.2,
        smoke_alarm=False,
        water_leak=True,
    )
    return Reading(**common, battery_pct=81.5), ReadingV2(**common, firmware="fw-2.1.0")


def _defaults(model: type) -> dict[str, Any]:
    return {f.name: f.default for f in msgspec.structs.fields(model) if f.default is not msgspec.NODEFAULT}


def judge(written: Any, read: Any) -> tuple[str, str]:
    """Compare what the writer sent with what the reader decoded: (outcome, detail)."""
    source, target = msgspec.structs.asdict(written), msgspec.structs.asdict(read)
    wrong = [f"{k}={target[k]!r} (sent {source[k]!r})" for k in target if k in source and target[k] != source[k]]
    if wrong:
        return "wrong", "; ".join(wrong)
    defaults = _defaults(type(read))
    missing = [k for k in target if k not in source]
    invented = [f"{k}={target[k]!r}" for k in missing if k not in defaults or target[k] != defaults[k]]
    if invented:
        return "invented", "not in the data, yet read as " + ", ".join(invented)
    ignored = [k for k in source if k not in target]
    parts = [f"{k} ignored" for k in ignored] + [f"{k} = default {target[k]!r}" for k in missing]
    return "ok", "; ".join(parts) or "identical"


def _one(
    for_model: Callable[[type], CodecFunctions], framing: str, writer_model: type, reader_model: type, written: Any
) -> tuple[str, str]:
    writer, reader = for_model(writer_model), for_model(reader_model)
    try:
        if framing == "single":
            read = reader.decode(writer.encode(written))
        else:
            batch = reader.decode_batch(writer.encode_batch([written, written]))
            if len(batch) != 2:
                return "wrong", f"a batch of 2 read as {len(batch)}"
            read = batch[0]
    except CodecError as exc:
        return "error", str(exc)
    return judge(written, read)


def evolution_table(codecs: Iterable[str] | None = None) -> list[EvolutionRow]:
    """One row per codec x direction x framing (all registered codecs by default)."""
    v1, v2 = sample_readings()
    cases = {DIRECTIONS[0]: (ReadingV2, Reading, v1), DIRECTIONS[1]: (Reading, ReadingV2, v2)}
    rows: list[EvolutionRow] = []
    for name in codecs if codecs is not None else CODECS.names():
        try:
            codec = CODECS.load(name)
        except PluginUnavailable as exc:
            rows += [EvolutionRow(name, d, f, "unavailable", str(exc)) for d in DIRECTIONS for f in FRAMINGS]
            continue
        for_model = codec.for_model
        if for_model is None:
            rows += [
                EvolutionRow(name, d, f, "unsupported", "the codec declares no for_model(model)")
                for d in DIRECTIONS
                for f in FRAMINGS
            ]
            continue
        for direction, (reader_model, writer_model, written) in cases.items():
            for framing in FRAMINGS:
                outcome, detail = _one(for_model, framing, writer_model, reader_model, written)
                rows.append(EvolutionRow(name, direction, framing, outcome, detail))
    return rows
