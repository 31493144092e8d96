"""What the registry hands out: a codec with the contract's defaults, whose decoders raise only CodecError.

The conversion of a library's declared errors happens in one place (``iotbench.codecs.base.refusing``),
for built-in and outside codecs alike; what a codec does not declare is a bug and passes through.
"""

from __future__ import annotations

import types

import msgspec
import pytest

from iotbench.codecs import CODECS, CodecError, LoadedCodec, get_codec
from iotbench.codecs.base import OPTIONAL, CodecFunctions, refusing
from iotbench.model.telemetry import Reading


class Refused(Exception):
    pass


def _raising(exc: BaseException):
    def decode(payload: bytes):
        raise exc

    return decode


def _plugin(**parts):
    json_codec = get_codec("json").plugin
    base = {
        part: getattr(json_codec, part)
        for part in ("label", "binary", "encode", "decode", "encode_batch", "decode_batch")
    }
    return types.SimpleNamespace(**{"name": "tiny", **base, **parts})


def test_a_declared_error_becomes_a_codec_error_naming_the_codec_from_none():
    decode = refusing("tiny", (Refused, KeyError), _raising(Refused("bad byte at 3\nand a schema dump")))
    with pytest.raises(CodecError, match=r"^tiny: cannot decode payload: Refused: bad byte at 3$") as caught:
        decode(b"x")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_the_codecs_own_codec_error_passes_unchanged_even_when_value_error_is_declared():
    own = CodecError("tiny: 3 bytes after the item")
    with pytest.raises(CodecError) as caught:
        refusing("tiny", (ValueError,), _raising(own))(b"x")
    assert caught.value is own


def test_an_undeclared_exception_is_a_bug_and_passes_through():
    with pytest.raises(ZeroDivisionError):
        refusing("tiny", (Refused,), _raising(ZeroDivisionError()))(b"x")


def test_nothing_declared_costs_nothing():
    decode = msgspec.json.Decoder(Reading).decode
    assert refusing("tiny", (), decode) is decode


def test_a_minimal_codec_gets_the_optional_parts_defaults():
    codec = LoadedCodec(_plugin())
    assert (codec.library, codec.errors, codec.for_model) == ("", (), None)
    assert set(OPTIONAL) == {"library", "errors", "for_model"}
    assert codec.decode is codec.plugin.decode  # nothing declared: nothing wrapped


def test_declared_errors_apply_to_both_decoders_and_to_for_model(readings):
    def for_model(model):
        return get_codec("json").plugin.for_model(model)

    codec = LoadedCodec(_plugin(errors=(msgspec.DecodeError,), for_model=for_model))
    for decode in (
        codec.decode,
        codec.decode_batch,
        codec.for_model(Reading).decode,
        codec.for_model(Reading).decode_batch,
    ):
        with pytest.raises(CodecError, match="^tiny: cannot decode payload: DecodeError: Input data was truncated"):
            decode(b"")
    assert isinstance(codec.for_model(Reading), CodecFunctions)
    assert codec.decode(codec.encode(readings[0])) == readings[0]
    assert codec.encode is codec.plugin.encode  # encoders are never wrapped


def test_what_is_not_a_codec_is_refused_with_the_reason():
    incomplete = _plugin()
    del incomplete.decode_batch
    with pytest.raises(TypeError, match="is not a codec: it lacks decode_batch"):
        LoadedCodec(incomplete)
    for errors in (ValueError, (ValueError, "oops")):
        with pytest.raises(TypeError, match="errors must be a tuple of exception classes"):
            LoadedCodec(_plugin(errors=errors))


def test_the_registry_loads_a_codec_once_and_anew_when_registered_again():
    assert CODECS.load("json") is get_codec("json")
    assert isinstance(get_codec("json"), LoadedCodec)
    try:
        CODECS.register("tiny", "iotbench.codecs.json_codec")
        first = get_codec("tiny")
        assert get_codec("tiny") is first
        CODECS.register("tiny", "iotbench.codecs.msgpack_msgspec_codec")
        assert get_codec("tiny").plugin is get_codec("msgpack-msgspec").plugin
    finally:
        CODECS.unregister("tiny")


def test_a_module_that_is_not_a_codec_is_unusable_with_the_reason():
    # `iotbench list` and a spec naming it show the reason, as for a missing library
    try:
        CODECS.register("not-a-codec", "iotbench.codecs.base")
        usable, why = CODECS.status("not-a-codec")
        assert not usable and "is not a codec: it lacks name" in why
    finally:
        CODECS.unregister("not-a-codec")


def test_every_builtin_codec_declares_its_libraries_errors():
    for name in CODECS.names():
        if CODECS.plugin(name).path.startswith("iotbench.codecs.") and CODECS.status(name)[0]:
            assert get_codec(name).errors, name
