"""Every registered codec round-trips the generator's readings exactly (single and batch),
with and without each compression; a new codec is tested here automatically."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from iotbench.codecs import CODECS, CodecError, get_codec
from iotbench.codecs.base import CodecFunctions
from iotbench.compression import compression_names, get_compression
from iotbench.model.telemetry import Reading
from iotbench.studies.evolution import evolution_table

CODEC_NAMES = CODECS.names()


def assert_exact(decoded: Reading, original: Reading) -> None:
    """Equal, and of the same types: 20 == 20.0 and two tz-aware instants compare equal anyway."""
    assert decoded == original
    assert type(decoded) is Reading
    for field in Reading.__struct_fields__:
        assert type(getattr(decoded, field)) is type(getattr(original, field)), field
    assert decoded.observed_at.utcoffset() == timedelta(0)


def test_generator_readings_exercise_microseconds_and_floats(readings):
    # otherwise "exact" would be tested on whole seconds only
    assert sum(r.observed_at.microsecond != 0 for r in readings) > len(readings) // 2
    assert len({r.device_id for r in readings}) > 10


@pytest.mark.parametrize("compression", compression_names())
@pytest.mark.parametrize("name", CODEC_NAMES)
def test_single_round_trip(name, compression, readings):
    codec, comp = get_codec(name), get_compression(compression)
    for reading in readings[:200]:
        payload = codec.encode(reading)
        assert isinstance(payload, bytes)
        assert_exact(codec.decode(comp.decompress(comp.compress(payload))), reading)


@pytest.mark.parametrize("compression", compression_names())
@pytest.mark.parametrize("name", CODEC_NAMES)
def test_batch_round_trip_with_compression(name, compression, readings):
    codec, comp = get_codec(name), get_compression(compression)
    for size in (1, 7, 100):
        batch = readings[:size]
        decoded = codec.decode_batch(comp.decompress(comp.compress(codec.encode_batch(batch))))
        assert decoded == batch
        assert_exact(decoded[-1], batch[-1])


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_all_generator_readings_round_trip_in_one_batch(name, readings):
    codec = get_codec(name)
    assert codec.decode_batch(codec.encode_batch(readings)) == readings


def not_default(reading: Reading) -> Reading:
    """``reading`` with every field that has a default set to another value (generator readings keep them)."""
    changed = {}
    for field in msgspec.structs.fields(Reading):
        if field.default is not msgspec.NODEFAULT:
            value = field.default
            changed[field.name] = (
                not value
                if isinstance(value, bool)
                else value + 6
                if isinstance(value, int)
                else value + 0.5
                if isinstance(value, float)
                else value + "-x"
            )
    return msgspec.structs.replace(reading, **changed)


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_fields_with_defaults_travel_too(name, readings):
    # a decoder that left a field out would hand back the default and pass every round trip above
    codec = get_codec(name)
    odd = [not_default(r) for r in readings[:3]]
    assert odd[0] != readings[0]
    assert_exact(codec.decode(codec.encode(odd[0])), odd[0])
    assert codec.decode_batch(codec.encode_batch(odd)) == odd


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_garbage_raises_codec_error(name):
    codec = get_codec(name)
    for payload in (b"", b"\x00", b"\xff" * 13, b"{not a reading"):
        with pytest.raises(CodecError):
            codec.decode(payload)
        with pytest.raises(CodecError):
            codec.decode_batch(payload)


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_single_payload_is_not_a_batch_and_back(name, readings):
    # a consumer configured for the wrong framing must get a CodecError, not a crash
    codec = get_codec(name)
    with pytest.raises(CodecError):
        codec.decode(codec.encode_batch(readings[:3]))
    with pytest.raises(CodecError):
        codec.decode_batch(codec.encode(readings[0]))


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_codec_declares_what_the_report_shows(name):
    codec = get_codec(name)
    assert codec.name == name
    assert codec.label and isinstance(codec.binary, bool)
    assert isinstance(codec.library, str)  # optional ("": not stated); the built-in codecs state theirs
    assert codec.library or not CODECS.plugin(name).path.startswith("iotbench.codecs.")
    assert isinstance(codec.errors, tuple)


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_codec_supports_the_evolution_check_or_says_it_does_not(name, readings):
    for_model = get_codec(name).for_model
    if for_model is None:  # optional: the evolution table shows the codec as unsupported
        assert {r.outcome for r in evolution_table([name])} == {"unsupported"}
        return
    functions = for_model(Reading)
    assert isinstance(functions, CodecFunctions)
    assert functions.decode(functions.encode(readings[0])) == readings[0]
    with pytest.raises(CodecError):
        functions.decode_batch(b"\xff" * 13)
