"""Every registered codec round-trips the generator's readings exactly (single and batch)."""

from __future__ import annotations

import pytest

from iotbench.codecs import CODECS, CodecError, get_codec
from iotbench.compression import compression_names, get_compression

CODEC_NAMES = CODECS.names()


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_single_round_trip(name, readings):
    codec = get_codec(name)
    for reading in readings:
        payload = codec.encode(reading)
        assert isinstance(payload, bytes)
        assert codec.decode(payload) == reading


@pytest.mark.parametrize("compression", compression_names())
@pytest.mark.parametrize("name", CODEC_NAMES)
def test_batch_round_trip_with_compression(name, compression, readings):
    codec, comp = get_codec(name), get_compression(compression)
    for size in (1, 7, 100):
        batch = readings[:size]
        assert codec.decode_batch(comp.decompress(comp.compress(codec.encode_batch(batch)))) == batch


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_garbage_raises_codec_error(name):
    codec = get_codec(name)
    for payload in (b"", b"\x00", b"\xff" * 13, b"{not a reading"):
        with pytest.raises(CodecError):
            codec.decode(payload)
        with pytest.raises(CodecError):
            codec.decode_batch(payload)


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_codec_declares_what_the_report_shows(name):
    codec = get_codec(name)
    assert codec.name == name
    assert codec.label and isinstance(codec.binary, bool)
