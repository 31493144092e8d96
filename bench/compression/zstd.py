"""Zstandard at level 3, through the zstandard package."""

from __future__ import annotations

import zstandard

from iotbench.codecs.base import CodecError
from iotbench.compression import MAX_INFLATED

name = "zstd"
label = "Zstandard level 3 (zstandard)"
libraries = ("zstandard",)

compress = zstandard.ZstdCompressor(level=3).compress
_dctx = zstandard.ZstdDecompressor()


def decompress(data: bytes) -> bytes:
    try:
        # max_output_size only applies when the frame has no content size; the
        # explicit check covers frames that announce a huge one.
        params = zstandard.get_frame_parameters(data)
        if params.content_size > MAX_INFLATED and params.content_size != zstandard.CONTENTSIZE_UNKNOWN:
            raise CodecError(f"zstd: frame announces {params.content_size} bytes, over {MAX_INFLATED}")
        return _dctx.decompress(data, max_output_size=MAX_INFLATED)
    except zstandard.ZstdError as exc:
        raise CodecError(f"zstd: {exc}") from None
