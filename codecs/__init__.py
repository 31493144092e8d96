"""Codec plugins. Adding a codec is adding a ``*_codec.py`` module and one line here."""

from __future__ import annotations

from typing import Any

from iotbench.codecs.base import Codec, CodecError
from iotbench.registry import Plugin, Registry

__all__ = ["CODECS", "Codec", "CodecError", "get_codec"]

_CORE = "included in iotbench's core dependencies"

CODECS = Registry(
    "codec",
    {
        # keep sorted
        "json": Plugin("iotbench.codecs.json_codec", _CORE),
        "msgpack": Plugin("iotbench.codecs.msgpack_codec", _CORE),
    },
    group="iotbench.codecs",
)


def get_codec(name: str) -> Any:
    """The codec module (or object) registered as ``name``: ``get_codec('json').encode(r)``."""
    return CODECS.load(name)
