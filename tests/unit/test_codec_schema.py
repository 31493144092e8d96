"""One schema source: telemetry.avsc, telemetry.proto and the Reading model describe the same reading."""

from __future__ import annotations

import json
from datetime import datetime

import msgspec
import pytest

from iotbench.codecs.schema import ADDED, AVSC, PROTO, REMOVED, ReadingV2, avro_schema, proto_messages
from iotbench.model.telemetry import Reading

MODELS = (Reading, ReadingV2)

# model type -> (Avro type, protobuf field type name)
TYPES = {
    str: ("string", "TYPE_STRING"),
    int: ("long", "TYPE_UINT64"),
    float: ("double", "TYPE_DOUBLE"),
    bool: ("boolean", "TYPE_BOOL"),
    datetime: ({"type": "long", "logicalType": "timestamp-micros"}, "TYPE_MESSAGE"),
}


def model_fields(model):
    return [(f.name, f.type) for f in msgspec.structs.fields(model)]


def test_schema_files_ship_with_the_codecs():
    assert AVSC.parent == PROTO.parent and AVSC.parent.name == "codecs"
    assert json.loads(AVSC.read_text())["name"] == "Reading"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_avro_schema_matches_the_model(model):
    schema = avro_schema(model)
    assert [f["name"] for f in schema["fields"]] == [name for name, _ in model_fields(model)]
    for field, (name, kind) in zip(schema["fields"], model_fields(model)):
        expected = "int" if name == "schema_version" else TYPES[kind][0]
        assert field["type"] == expected, name
    defaults = {f.name: f.default for f in msgspec.structs.fields(model) if f.default is not msgspec.NODEFAULT}
    assert {f["name"]: f["default"] for f in schema["fields"] if "default" in f} == defaults


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_proto_message_matches_the_model(model):
    message, batch, timestamp = proto_messages(model)
    fields = sorted(message.DESCRIPTOR.fields, key=lambda f: f.number)
    assert [f.name for f in fields] == [name for name, _ in model_fields(model)]
    for field, (name, kind) in zip(fields, model_fields(model)):
        expected = "TYPE_UINT32" if name == "schema_version" else TYPES[kind][1]
        assert field.type == getattr(field, expected), name
    assert message.DESCRIPTOR.fields_by_name["observed_at"].message_type.full_name == "google.protobuf.Timestamp"
    assert batch.DESCRIPTOR.fields_by_name["readings"].message_type is message.DESCRIPTOR


def test_v2_removes_one_field_and_adds_one_with_a_default():
    v1, v2 = set(Reading.__struct_fields__), set(ReadingV2.__struct_fields__)
    assert v1 - v2 == {REMOVED} and v2 - v1 == {ADDED}
    added = next(f for f in msgspec.structs.fields(ReadingV2) if f.name == ADDED)
    assert added.default is not msgspec.NODEFAULT
    # protobuf never reuses the removed field's number
    v1_numbers = {f.name: f.number for f in proto_messages(Reading)[0].DESCRIPTOR.fields}
    v2_numbers = {f.name: f.number for f in proto_messages(ReadingV2)[0].DESCRIPTOR.fields}
    assert v1_numbers[REMOVED] not in v2_numbers.values()
    assert all(v2_numbers[k] == v1_numbers[k] for k in v1 & v2)


def test_proto_is_compiled_from_the_checked_in_file(tmp_path, monkeypatch):
    # the codec has no generated code: editing the .proto is the only way to change it
    from iotbench.codecs import schema

    source = PROTO.read_text().replace(
        "double temperature_c = 4;", "double temperature_c = 4;\n  string probe = 99;", 1
    )
    (tmp_path / "telemetry.proto").write_text(source)
    monkeypatch.setattr(schema, "SCHEMA_DIR", tmp_path)
    monkeypatch.setattr(schema, "PROTO", tmp_path / "telemetry.proto")
    schema._proto_pool.cache_clear()
    try:
        assert "probe" in proto_messages(Reading)[0].DESCRIPTOR.fields_by_name
    finally:
        monkeypatch.undo()
        schema._proto_pool.cache_clear()
    assert "probe" not in proto_messages(Reading)[0].DESCRIPTOR.fields_by_name


def test_a_broken_proto_fails_with_a_clear_error(tmp_path, monkeypatch):
    from iotbench.codecs import schema

    (tmp_path / "telemetry.proto").write_text('syntax = "proto3";\nmessage Reading { nonsense }\n')
    monkeypatch.setattr(schema, "SCHEMA_DIR", tmp_path)
    monkeypatch.setattr(schema, "PROTO", tmp_path / "telemetry.proto")
    schema._proto_pool.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="protoc could not compile"):
            proto_messages(Reading)
    finally:
        monkeypatch.undo()
        schema._proto_pool.cache_clear()
