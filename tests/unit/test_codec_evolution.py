"""The schema-evolution table: what each format promises when v1 and v2 readings meet."""

from __future__ import annotations

import pytest

from iotbench.codecs import CODECS
from iotbench.codecs.schema import ReadingV2
from iotbench.model.telemetry import Reading
from iotbench.studies.evolution import DIRECTIONS, EvolutionRow, evolution_table, judge, sample_readings

V2_READS_V1, V1_READS_V2 = DIRECTIONS
NAMED_MAPS = ("cbor", "json", "json-orjson", "json-stdlib", "msgpack", "msgpack-msgspec")


@pytest.fixture(scope="module")
def table() -> dict[tuple[str, str, str], EvolutionRow]:
    return {(r.codec, r.direction, r.framing): r for r in evolution_table()}


def outcomes(table, codec, direction):
    return {table[(codec, direction, framing)].outcome for framing in ("single", "batch")}


def test_every_codec_has_every_row(table):
    assert {(c, d, f) for c in CODECS.names() for d in DIRECTIONS for f in ("single", "batch")} == set(table)
    assert all(r.outcome in {"ok", "invented", "wrong", "error"} for r in table.values())


@pytest.mark.parametrize("codec", NAMED_MAPS)
def test_named_maps_ignore_unknown_keys_and_refuse_a_missing_required_one(codec, table):
    # JSON/MessagePack/CBOR maps: the v2 reader skips battery_pct and takes firmware's default;
    # the v1 reader has no default for battery_pct, so it refuses (typed decoding), never guesses
    assert outcomes(table, codec, V2_READS_V1) == {"ok"}
    assert "firmware = default 'unknown'" in table[(codec, V2_READS_V1, "single")].detail
    assert outcomes(table, codec, V1_READS_V2) == {"error"}
    assert "battery_pct" in table[(codec, V1_READS_V2, "single")].detail


@pytest.mark.parametrize("codec", ("avro", "avro-official"))
def test_avro_resolves_through_the_reader_schema(codec, table):
    # the writer's schema travels (fingerprint or container header); resolution drops the
    # removed field, fills the added one from the reader's default, and refuses a reader
    # field that has no default
    assert outcomes(table, codec, V2_READS_V1) == {"ok"}
    assert "battery_pct ignored" in table[(codec, V2_READS_V1, "batch")].detail
    assert outcomes(table, codec, V1_READS_V2) == {"error"}
    assert "No default value for field battery_pct" in table[(codec, V1_READS_V2, "single")].detail


def test_protobuf_skips_unknown_numbers_and_zero_fills_missing_scalars(table):
    # proto3: an unknown field number is skipped; a missing scalar reads as zero -- silently
    assert outcomes(table, "protobuf", V2_READS_V1) == {"ok"}
    assert outcomes(table, "protobuf", V1_READS_V2) == {"invented"}
    assert "battery_pct=0.0" in table[("protobuf", V1_READS_V2, "single")].detail


def test_positional_arrays_cannot_evolve_by_removal(table):
    # removing a field shifts every later position: never a silent success
    for direction in DIRECTIONS:
        assert outcomes(table, "msgpack-array", direction) <= {"error", "wrong"}


def test_judge_tells_the_outcomes_apart():
    v1, v2 = sample_readings()
    shifted = Reading(**{**{k: getattr(v1, k) for k in Reading.__struct_fields__}, "humidity_pct": 1.0})
    assert judge(v1, shifted)[0] == "wrong"
    as_v2 = ReadingV2(
        **{k: getattr(v1, k) for k in ReadingV2.__struct_fields__ if k not in ("firmware", "schema_version")},
        schema_version=1,
    )
    assert judge(v1, as_v2) == ("ok", "battery_pct ignored; firmware = default 'unknown'")
    zero = Reading(**{k: getattr(v2, k) for k in Reading.__struct_fields__ if k != "battery_pct"}, battery_pct=0.0)
    assert judge(v2, zero)[0] == "invented"


def test_the_table_is_plain_data_for_the_report():
    rows = evolution_table(["json"])
    assert len(rows) == 4
    assert all(
        isinstance(getattr(r, f), str) for r in rows for f in ("codec", "direction", "framing", "outcome", "detail")
    )


def test_unknown_and_unsupported_codecs_get_rows_not_crashes(monkeypatch):
    import types

    from iotbench.codecs import LoadedCodec, get_codec
    from iotbench.registry import PluginUnavailable

    json_codec = get_codec("json")
    # a codec that leaves out the optional for_model
    fake = LoadedCodec(
        types.SimpleNamespace(
            name="fake",
            label="Fake",
            binary=False,
            encode=json_codec.encode,
            decode=json_codec.decode,
            encode_batch=json_codec.encode_batch,
            decode_batch=json_codec.decode_batch,
        )
    )

    def load(name):
        if name == "missing":
            raise PluginUnavailable("codec 'missing' needs nothing: pip install nothing")
        return fake

    monkeypatch.setattr(CODECS, "load", load)
    rows = evolution_table(["missing", "fake"])
    assert {r.outcome for r in rows if r.codec == "missing"} == {"unavailable"}
    assert {r.outcome for r in rows if r.codec == "fake"} == {"unsupported"}
