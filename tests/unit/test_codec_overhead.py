"""The overhead study's direct recipes do exactly the plugins' job (so the ratios mean something).

No timing is asserted here: the >= 0.9 bar at batch 100 is asserted by
tests/benchmarks/test_codec_bench.py, and the ratios are recorded in docs/codecs.md.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect

import msgspec
import pytest

from iotbench.codecs import CODECS, get_codec
from iotbench.studies import codec_overhead
from iotbench.studies.codec_overhead import GATED, OPS, RECIPES, overhead_rows, same_job


def test_every_recipe_names_a_registered_codec():
    # a recipe per built-in codec is kept, but not required: an outside codec is simply not measured
    assert set(RECIPES) <= set(CODECS.names())


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_makes_the_plugins_bytes_and_readings(name, readings):
    codec = get_codec(name)
    assert same_job(name, codec, readings[0], readings[:100]) is None
    assert same_job(name, codec, readings[-1], readings[-7:]) is None


def test_a_recipe_that_does_less_is_caught(readings):
    codec = get_codec("json")
    recipe = RECIPES["json"]()

    def broken(r):
        raise KeyError("nothing")

    def other_seq(r):
        return recipe.encode(msgspec.structs.replace(r, seq=r.seq + 1))

    def drops_one(p):
        return recipe.decode_batch(p)[:-1]

    def check(**changed):
        return same_job("json", codec, readings[0], readings[:3], dataclasses.replace(recipe, **changed))

    assert check(encode=broken).startswith("json: the recipe fails: KeyError")
    assert check(encode=other_seq) == "json: single event differs"
    assert check(decode_batch=drops_one) == "json: batch round trip differs"
    assert check() is None


def test_recipes_use_no_plugin_code():
    # the baseline must be the library alone: from iotbench.codecs only the schema files, and the
    # registry for the plugin side (function-level imports included)
    tree = ast.parse(inspect.getsource(codec_overhead))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {m for m in imported if m.startswith("iotbench.codecs")} <= {"iotbench.codecs", "iotbench.codecs.schema"}


def test_overhead_rows_are_plain_data():
    rows = overhead_rows(["json"], repeats=1, budget_s=0.0005)
    assert [(r.codec, r.op) for r in rows] == [("json", op) for op in OPS]
    assert all(r.direct_ns > 0 and r.plugin_ns > 0 and r.ratio > 0 for r in rows)
    assert [r.op for r in rows if r.gated] == list(GATED)


def test_a_codec_without_a_recipe_is_left_out():
    CODECS.register("json-again", "iotbench.codecs.json_codec")
    try:
        assert overhead_rows(["json-again"], repeats=1, budget_s=0.0005) == []
    finally:
        CODECS.unregister("json-again")
