"""The overhead benchmark's direct recipes do exactly the plugins' job (so the ratios mean something).

No timing is asserted here; the ratios themselves are recorded in docs/codecs.md.
"""

from __future__ import annotations

import pytest

from iotbench.codec_overhead import RECIPES, direct_namespace, overhead_rows
from iotbench.codecs import CODECS, get_codec


def test_every_builtin_codec_has_a_direct_recipe():
    assert set(RECIPES) == set(CODECS.names())


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_makes_the_plugins_bytes_and_reading(name, readings):
    codec = get_codec(name)
    for reading in (readings[0], readings[-1]):
        direct = direct_namespace(name, reading)
        assert direct["p"] == codec.encode(reading)
        assert direct["out"] == reading == codec.decode(direct["p"])


def test_recipes_use_no_plugin_code():
    # the baseline must be the library alone: only the schema helpers may be shared
    for recipe in RECIPES.values():
        source = recipe.setup + recipe.encode + recipe.decode
        assert "_codec" not in source and "avro_framing" not in source and "msgspec_support" not in source


def test_overhead_rows_are_plain_data():
    rows = overhead_rows(["json"], repeats=1, budget_s=0.0005)
    assert [(r.codec, r.op) for r in rows] == [("json", "encode"), ("json", "decode")]
    assert all(r.direct_ns > 0 and r.plugin_ns > 0 and r.ratio > 0 for r in rows)
