"""LZ4 frames, through the lz4 package."""

from __future__ import annotations

import lz4.frame

from iotbench.codecs.base import CodecError
from iotbench.compression import MAX_INFLATED

name = "lz4"
label = "LZ4 frame (lz4)"
libraries = ("lz4",)

compress = lz4.frame.compress


def decompress(data: bytes) -> bytes:
    try:
        d = lz4.frame.LZ4FrameDecompressor()
        out = d.decompress(data, max_length=MAX_INFLATED)
    except RuntimeError as exc:
        raise CodecError(f"lz4: {exc}") from None
    if not d.eof:
        raise CodecError(f"lz4: truncated frame or inflates past {MAX_INFLATED} bytes")
    return out
