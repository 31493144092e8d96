"""No compression: the payload as the codec made it."""

from __future__ import annotations

name = "none"
label = "no compression"
libraries: tuple[str, ...] = ()


def compress(data: bytes) -> bytes:
    return data


decompress = compress
