"""gzip at level 6: a real gzip member (header + CRC), what HTTP's Content-Encoding carries."""

from __future__ import annotations

import zlib

from iotbench.codecs.base import CodecError
from iotbench.compression import MAX_INFLATED

name = "gzip"
label = "gzip level 6 (zlib, standard library)"
libraries: tuple[str, ...] = ()


def compress(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits=31: a gzip member, not a raw zlib stream
    return c.compress(data) + c.flush()


def decompress(data: bytes) -> bytes:
    d = zlib.decompressobj(31)
    try:
        out = d.decompress(data, MAX_INFLATED)
    except zlib.error as exc:
        raise CodecError(f"gzip: {exc}") from None
    if d.unconsumed_tail:
        raise CodecError(f"gzip: inflates past {MAX_INFLATED} bytes")
    if not d.eof:
        raise CodecError("gzip: truncated stream")
    return out
