"""Compression of one send (a single event or a batch): none, gzip, zstd, lz4.

Decompression is bounded: a payload that would inflate past ``MAX_INFLATED`` bytes
is refused, so a hostile "zip bomb" cannot take the consumer's memory.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

from iotbench.codecs.base import CodecError

__all__ = ["Compression", "get_compression", "compression_names", "MAX_INFLATED"]

MAX_INFLATED = 16 * 1024 * 1024  # Event Hubs takes 1 MB per publication; 16x is generous


@dataclass(frozen=True)
class Compression:
    name: str
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]


def _identity(data: bytes) -> bytes:
    return data


def _gzip(data: bytes) -> bytes:
    # wbits=31: a real gzip member (header + CRC), what HTTP Content-Encoding carries
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def _gunzip(data: bytes) -> bytes:
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


def _zstd() -> Compression | None:
    try:
        import zstandard
    except ImportError:
        return None
    cctx = zstandard.ZstdCompressor(level=3)
    dctx = zstandard.ZstdDecompressor()

    def decompress(data: bytes) -> bytes:
        try:
            # max_output_size only applies when the frame has no content size; the
            # explicit check covers frames that announce a huge one.
            params = zstandard.get_frame_parameters(data)
            if params.content_size > MAX_INFLATED and params.content_size != zstandard.CONTENTSIZE_UNKNOWN:
                raise CodecError(f"zstd: frame announces {params.content_size} bytes, over {MAX_INFLATED}")
            return dctx.decompress(data, max_output_size=MAX_INFLATED)
        except zstandard.ZstdError as exc:
            raise CodecError(f"zstd: {exc}") from None

    return Compression("zstd", cctx.compress, decompress)


def _lz4() -> Compression | None:
    try:
        import lz4.frame
    except ImportError:
        return None

    def decompress(data: bytes) -> bytes:
        try:
            d = lz4.frame.LZ4FrameDecompressor()
            out = d.decompress(data, max_length=MAX_INFLATED)
        except RuntimeError as exc:
            raise CodecError(f"lz4: {exc}") from None
        if not d.eof:
            raise CodecError(f"lz4: truncated frame or inflates past {MAX_INFLATED} bytes")
        return out

    return Compression("lz4", lz4.frame.compress, decompress)


_OPTIONAL: dict[str, Callable[[], Compression | None]] = {"lz4": _lz4, "zstd": _zstd}
_INSTALL = "pip install 'iotbench[compression]'"
_cache: dict[str, Compression] = {
    "gzip": Compression("gzip", _gzip, _gunzip),
    "none": Compression("none", _identity, _identity),
}


def compression_names() -> list[str]:
    return sorted([*_cache, *_OPTIONAL])


def get_compression(name: str) -> Compression:
    """``get_compression('zstd').compress(b'...')``; raises LookupError with an install hint."""
    if name in _cache:
        return _cache[name]
    if name not in _OPTIONAL:
        raise LookupError(f"unknown compression {name!r} (known: {', '.join(compression_names())})")
    made = _OPTIONAL[name]()
    if made is None:
        raise LookupError(f"compression {name!r} is not installed: {_INSTALL}")
    _cache[name] = made
    return made
