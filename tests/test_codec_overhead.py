"""The overhead benchmark's direct recipes do exactly the plugins' job (so the ratios mean something).

No timing is asserted here; the ratios themselves are recorded in docs/codecs.md.
"""

from __future__ import annotations

import pytest

from iotbench.studies.codec_overhead import OPS, RECIPES, overhead_rows, same_job
from iotbench.codecs import CODECS, get_codec


def test_every_builtin_codec_has_a_direct_recipe():
    assert set(RECIPES) == set(CODECS.names())


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_makes_the_plugins_bytes_and_readings(name, readings):
    codec = get_codec(name)
    assert same_job(name, codec, readings[0], readings[:100]) is None
    assert same_job(name, codec, readings[-1], readings[-7:]) is None


def test_a_recipe_that_does_less_is_caught(readings, monkeypatch):
    import dataclasses

    codec = get_codec("json")
    monkeypatch.setitem(RECIPES, "json", dataclasses.replace(RECIPES["json"], encode="p = b'{}'"))
    assert same_job("json", codec, readings[0], readings[:3]).startswith("json: the recipe fails")
    skipping = "p = enc.encode(msgspec.structs.replace(r, seq=r.seq + 1))"
    monkeypatch.setitem(RECIPES, "json", dataclasses.replace(RECIPES["json"], encode=skipping))
    assert same_job("json", codec, readings[0], readings[:3]) == "json: single event differs"


def test_recipes_use_no_plugin_code():
    # the baseline must be the library alone: only the schema helpers may be shared
    for recipe in RECIPES.values():
        source = recipe.setup + recipe.encode + recipe.decode + recipe.encode_batch + recipe.decode_batch
        assert "_codec" not in source and "avro_framing" not in source and "msgspec_support" not in source


def test_overhead_rows_are_plain_data():
    rows = overhead_rows(["json"], repeats=1, budget_s=0.0005)
    assert [(r.codec, r.op) for r in rows] == [("json", op) for op in OPS]
    assert all(r.direct_ns > 0 and r.plugin_ns > 0 and r.ratio > 0 for r in rows)
