"""Compression of one send (a single event or a batch): none, gzip, zstd, lz4.

A compression is a module with ``name``, ``label``, ``libraries``, ``compress`` and
``decompress``, registered in ``COMPRESSIONS`` like codecs and transports (outside
packages: the ``iotbench.compressions`` entry-point group), imported when first asked for.

Decompression is bounded: a payload that would inflate past ``MAX_INFLATED`` bytes is
refused with ``CodecError``, so a hostile "zip bomb" cannot take the consumer's memory.
"""

from __future__ import annotations

from typing import Protocol

from iotbench.registry import Plugin, PluginUnavailable, Registry

__all__ = ["COMPRESSIONS", "Compression", "MAX_INFLATED", "compression_names", "get_compression"]

MAX_INFLATED = 16 * 1024 * 1024  # Event Hubs takes 1 MB per publication; 16x is generous
_INSTALL = "pip install 'iotbench[compression]'"


class Compression(Protocol):
    """``get_compression('zstd').compress(b'...')``."""

    name: str
    label: str  # what it is, in one line (`iotbench list`)
    libraries: tuple[str, ...]  # distributions it uses: their versions go into run.json

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, data: bytes) -> bytes:
        """The original bytes; ``CodecError`` for a corrupt, truncated or oversized payload."""


COMPRESSIONS = Registry(
    "compression",
    {
        # keep sorted
        "gzip": Plugin("iotbench.compression.gzip", "built in"),
        "lz4": Plugin("iotbench.compression.lz4", _INSTALL),
        "none": Plugin("iotbench.compression.none", "built in"),
        "zstd": Plugin("iotbench.compression.zstd", _INSTALL),
    },
    group="iotbench.compressions",
)


def compression_names() -> list[str]:
    return COMPRESSIONS.names()


def get_compression(name: str) -> Compression:
    """The compression registered as ``name``; LookupError (with the install hint) when it cannot be had."""
    try:
        compression: Compression = COMPRESSIONS.load(name)  # UnknownPlugin is a LookupError
    except PluginUnavailable as exc:
        raise LookupError(str(exc)) from None
    return compression
