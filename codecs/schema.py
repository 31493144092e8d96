"""The one schema source: the reading's versions and the schema files that describe them.

``telemetry.avsc`` and ``telemetry.proto`` sit beside this module and describe
``iotbench.model.telemetry.Reading`` (tests/unit/test_codec_schema.py checks that all three
agree). ``ReadingV2`` is the next version of the reading, used by the
schema-evolution check: one field removed (``battery_pct``: mains-powered sensors)
and one added with a default (``firmware``). Its Avro schema is derived here from
the v1 file, so there is one file per format, not one per version.

The .proto is compiled with grpcio-tools' bundled protoc on first use (the Debian
protoc is older than the protobuf runtime; see FACTS.md): no generated code is
checked in, so none can go stale.
"""

from __future__ import annotations

import copy
import functools
import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from iotbench.model.telemetry import Reading

__all__ = ["AVSC", "PROTO", "ReadingV2", "REMOVED", "ADDED", "avro_schema", "proto_messages", "version_of"]

SCHEMA_DIR = Path(__file__).resolve().parent
AVSC = SCHEMA_DIR / "telemetry.avsc"
PROTO = SCHEMA_DIR / "telemetry.proto"

REMOVED = "battery_pct"  # in v1, not in v2
ADDED = "firmware"  # in v2 with a default, not in v1
FIRMWARE_DEFAULT = "unknown"


class ReadingV2(msgspec.Struct, frozen=True, kw_only=True):
    """Version 2 of the reading: ``battery_pct`` removed, ``firmware`` added (default "unknown").

    New fields go last, so positional (array-like) formats keep every old position
    except the removed one -- which is exactly what the evolution table exposes.
    """

    device_id: str
    seq: int
    observed_at: datetime
    temperature_c: float
    humidity_pct: float
    smoke_alarm: bool
    water_leak: bool
    schema_version: int = 2
    firmware: str = FIRMWARE_DEFAULT


_VERSIONS: dict[type, int] = {Reading: 1, ReadingV2: 2}


def version_of(model: type) -> int:
    """1 for ``Reading``, 2 for ``ReadingV2``; a clear error for anything else."""
    try:
        return _VERSIONS[model]
    except KeyError:
        raise LookupError(f"no schema for {model.__name__}: codecs know {[m.__name__ for m in _VERSIONS]}") from None


@functools.cache
def _avro_v1() -> dict[str, Any]:
    return json.loads(AVSC.read_text())


def avro_schema(model: type) -> dict[str, Any]:
    """The Avro schema (parsed JSON, a fresh copy) of ``model``: the file for v1, derived for v2."""
    schema = copy.deepcopy(_avro_v1())
    if version_of(model) == 1:
        return schema
    fields = [f for f in schema["fields"] if f["name"] != REMOVED]
    for field in fields:
        if field["name"] == "schema_version":
            field["default"] = 2
    fields.append({"name": ADDED, "type": "string", "default": FIRMWARE_DEFAULT})
    schema["fields"] = fields
    return schema


@functools.cache
def _proto_pool() -> Any:
    """Compile telemetry.proto with grpcio-tools' protoc into a private descriptor pool."""
    import importlib.resources

    from google.protobuf import descriptor_pb2, descriptor_pool
    from grpc_tools import protoc

    include = str(importlib.resources.files("grpc_tools") / "_proto")
    with tempfile.TemporaryDirectory(prefix="iotbench-proto-") as tmp:
        out = Path(tmp) / "telemetry.pb"
        code = protoc.main(
            [
                "protoc",
                f"-I{SCHEMA_DIR}",
                f"-I{include}",
                "--include_imports",
                f"--descriptor_set_out={out}",
                str(PROTO),
            ]
        )
        if code != 0:
            raise RuntimeError(f"protoc could not compile {PROTO} (exit {code}); its errors are on stderr")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    pool = descriptor_pool.DescriptorPool()
    for file in files:
        pool.Add(file)
    return pool


def proto_messages(model: type) -> tuple[type, type, type]:
    """(message class, batch message class, Timestamp class) for ``model``, compiled on first use."""
    from google.protobuf import message_factory

    suffix = "" if version_of(model) == 1 else "V2"
    pool = _proto_pool()

    def cls(full_name: str) -> type:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))

    return (
        cls(f"iotbench.telemetry.Reading{suffix}"),
        cls(f"iotbench.telemetry.Reading{suffix}Batch"),
        cls("google.protobuf.Timestamp"),
    )
