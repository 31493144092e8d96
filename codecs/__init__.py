"""Codec plugins. Adding a codec is adding a ``*_codec.py`` module and one line here."""

from __future__ import annotations

from typing import Any

from iotbench.codecs.base import Codec, CodecError
from iotbench.registry import Plugin, Registry

__all__ = ["CODECS", "Codec", "CodecError", "get_codec"]

_CORE = "included in iotbench's core dependencies"


def _extra(name: str) -> str:
    return f"pip install 'iotbench[{name}]'"


CODECS = Registry(
    "codec",
    {
        # keep sorted
        "avro": Plugin("iotbench.codecs.avro_codec", _extra("avro")),
        "avro-official": Plugin("iotbench.codecs.avro_official_codec", _extra("avro")),
        "cbor": Plugin("iotbench.codecs.cbor_codec", _extra("cbor")),
        "json": Plugin("iotbench.codecs.json_codec", _CORE),
        "json-orjson": Plugin("iotbench.codecs.json_orjson_codec", _extra("json")),
        "json-stdlib": Plugin("iotbench.codecs.json_stdlib_codec", _CORE),
        "msgpack": Plugin("iotbench.codecs.msgpack_codec", _extra("msgpack")),
        "msgpack-array": Plugin("iotbench.codecs.msgpack_array_codec", _CORE),
        "msgpack-msgspec": Plugin("iotbench.codecs.msgpack_msgspec_codec", _CORE),
        "protobuf": Plugin("iotbench.codecs.protobuf_codec", _extra("protobuf")),
    },
    group="iotbench.codecs",
)


def get_codec(name: str) -> Any:
    """The codec module (or object) registered as ``name``: ``get_codec('json').encode(r)``."""
    return CODECS.load(name)
