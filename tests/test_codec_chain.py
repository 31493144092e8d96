"""The C chain and its Python twin: same results, same errors, no leaked references."""

from __future__ import annotations

import sys

import msgspec
import pytest
from support import IN_CI

from iotbench.codecs import CodecError, get_codec
from iotbench.codecs import chain as chain_module
from iotbench.codecs.chain import python_chain
from iotbench.model.telemetry import Reading

IMPLEMENTATIONS = {"python": python_chain}
if chain_module.COMPILED:
    IMPLEMENTATIONS["c"] = chain_module.chain


def test_the_c_chain_is_built_in_ci() -> None:
    # without a compiler pip falls back to the Python twin (slower, same results); CI must build it
    if IN_CI:
        assert chain_module.COMPILED, "codecs/_chain.c was not compiled: is gcc installed? (scripts/setup)"
    if chain_module.COMPILED:
        assert type(chain_module.chain([len])).__name__ == "builtin_function_or_method"


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def make(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return IMPLEMENTATIONS[request.param]


class Refused(Exception):
    pass


def _refuse(exc: BaseException) -> CodecError:
    return CodecError(f"refused: {exc}")


def test_steps_run_in_order(make) -> None:  # type: ignore[no-untyped-def]
    assert make([str.strip, str.upper, len])("  abc ") == 3
    assert make([str.upper])("x") == "X"


def test_every_kind_of_builtin_step(make) -> None:  # type: ignore[no-untyped-def]
    # the C chain calls METH_O / METH_FASTCALL (+ keywords) builtins directly and the rest by vectorcall
    steps = [sorted, tuple, ",".join, "<{}>".format, str.upper, str.encode, len, abs]
    assert make(steps)(["b", "a"]) == len("<A,B>")
    assert make([int, abs])("-7") == 7
    with pytest.raises(ValueError):
        make([int, abs])("seven")
    with pytest.raises(CodecError, match="refused: invalid literal"):
        make([int, abs], refused=ValueError, refuse=_refuse)("seven")


def test_last_keywords_bind_the_tuple_to_names(make) -> None:  # type: ignore[no-untyped-def]
    chained = make([tuple, dict], last_keywords=("a", "b"))
    assert chained([1, 2]) == {"a": 1, "b": 2}
    with pytest.raises(TypeError, match="tuple of 2 items"):
        chained([1, 2, 3])


def test_a_refused_exception_becomes_the_codecs_error_from_none(make) -> None:  # type: ignore[no-untyped-def]
    def fail(_: object) -> None:
        raise Refused("bad byte at 3")

    chained = make([fail], refused=(Refused, KeyError), refuse=_refuse)
    with pytest.raises(CodecError, match="refused: bad byte at 3") as caught:
        chained(b"x")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_other_exceptions_pass_through_unchanged(make) -> None:  # type: ignore[no-untyped-def]
    def fail(_: object) -> None:
        raise RuntimeError("a bug, not a bad payload")

    with pytest.raises(RuntimeError, match="a bug"):
        make([fail], refused=Refused, refuse=_refuse)(1)
    with pytest.raises(ZeroDivisionError):
        make([lambda x: 1 / x])(0)


def test_refuse_must_return_an_exception(make) -> None:  # type: ignore[no-untyped-def]
    def fail(_: object) -> None:
        raise Refused("x")

    with pytest.raises(TypeError, match="must return an exception instance"):
        make([fail], refused=Refused, refuse=lambda exc: "not an exception")(1)


@pytest.mark.parametrize("kwargs, error", [
    ({"steps": []}, "at least one step"),
    ({"steps": [len] * 9}, "at most 8 steps"),
    ({"steps": [len, 3]}, "step 1 is not callable"),
    ({"steps": [len], "refused": ValueError}, "together"),
    ({"steps": [len], "refuse": _refuse}, "together"),
    ({"steps": [len], "refused": ValueError, "refuse": 5}, "refuse must be callable"),
    ({"steps": [len], "last_keywords": ("a", 1)}, "last_keywords must be strings"),
])
def test_bad_construction_is_refused(make, kwargs, error) -> None:  # type: ignore[no-untyped-def]
    kwargs = dict(kwargs)
    steps = kwargs.pop("steps")
    with pytest.raises((TypeError, ValueError), match=error):
        make(steps, **kwargs)


@pytest.mark.skipif(not hasattr(sys, "getrefcount"), reason="needs CPython's reference counts")
def test_no_reference_leaks_on_success_or_refusal(make) -> None:  # type: ignore[no-untyped-def]
    decode = make([msgspec.json.Decoder(Reading).decode, msgspec.structs.astuple, Reading],
                  last_keywords=Reading.__struct_fields__, refused=msgspec.DecodeError, refuse=_refuse)
    good = get_codec("json").encode(_reading())
    bad = good[:-5]
    for payload in (good, bad):
        before = sys.getrefcount(payload), sys.getrefcount(_refuse), sys.getrefcount(Reading)
        for _ in range(2000):
            try:
                decode(payload)
            except CodecError:
                pass
        assert (sys.getrefcount(payload), sys.getrefcount(_refuse), sys.getrefcount(Reading)) == before


def test_the_codecs_use_the_compiled_chain_when_built() -> None:
    # the plugin-overhead figure (docs/codecs.md) depends on it: no Python frame in these
    if not chain_module.COMPILED:
        assert not IN_CI, "codecs/_chain.c was not compiled"
        pytest.skip("built without a C compiler: the codecs use the Python twin")
    for name, ops in {"json": ("decode", "decode_batch"), "msgpack-msgspec": ("decode", "decode_batch"),
                      "msgpack-array": ("encode", "decode")}.items():
        codec = get_codec(name)
        for op in ops:
            assert type(getattr(codec, op).__self__).__name__ == "Chain", (name, op)


def _reading() -> Reading:
    from iotbench.studies.samples import sample_readings

    return sample_readings(1)[0]
