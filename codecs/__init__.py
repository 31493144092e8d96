"""Codec plugins. Adding a codec is adding a ``*_codec.py`` module and one line here
(or, from another package, an entry point in the ``iotbench.codecs`` group)."""

from __future__ import annotations

from typing import Any

from iotbench.codecs.base import Codec, CodecError, LoadedCodec
from iotbench.registry import Plugin, PluginUnavailable, Registry

__all__ = ["CODECS", "Codec", "CodecError", "LoadedCodec", "get_codec"]

_CORE = "included in iotbench's core dependencies"


def _extra(name: str) -> str:
    return f"pip install 'iotbench[{name}]'"


class CodecRegistry(Registry):
    """The plugin registry whose ``load`` returns a :class:`LoadedCodec` (the contract's defaults applied,
    decoding refusing with ``CodecError`` only), whichever way the codec was registered."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._codecs: dict[str, LoadedCodec] = {}

    def load(self, name: str) -> LoadedCodec:
        plugin = super().load(name)
        loaded = self._codecs.get(name)
        if loaded is None or loaded.plugin is not plugin:  # first use, or registered anew
            try:
                loaded = LoadedCodec(plugin)
            except TypeError as exc:  # shown by `iotbench list` and a spec naming it, like a missing library
                raise PluginUnavailable(f"codec {name!r}: {exc}") from exc
            self._codecs[name] = loaded
        return loaded


CODECS = CodecRegistry(
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


def get_codec(name: str) -> LoadedCodec:
    """The codec registered as ``name``: ``get_codec('json').encode(r)``; its decoders raise only CodecError."""
    return CODECS.load(name)
