"""Property: any spec with one bad value is refused with a SpecError naming that key -- never
another exception, never accepted -- and any spec within the limits parses to at least one cell.

Fast by design (no I/O, only the in-process transport is constructed): 200 examples each.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import iotbench.model.limits
import iotbench.model.spec
from iotbench.codecs import CODECS
from iotbench.compression import compression_names
from iotbench.model.spec import SpecError, parse_spec

BASE = {
    "codecs": ["json"],
    "transports": ["inprocess"],
    "batch": [1, 100],
    "devices": 1000,
    "interval_s": 1.0,
    "duration_s": 5.0,
    "warmup_s": 1.0,
}
USABLE_CODECS = sorted(n for n in CODECS.names() if CODECS.status(n)[0])
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# key path -> kind: every number a spec holds (the path into the raw dict, dotted)
INTS = [
    "batch",
    "connections",
    "devices",
    "repeats",
    "seed",
    "max_inflight",
    "cold_store.roll_bytes",
    "transport_options.inprocess.max_buffered_bytes",
]
FLOATS = [
    "interval_s",
    "jitter",
    "start_spread_s",
    "duration_s",
    "warmup_s",
    "linger_ms",
    "send_timeout_s",
    "drain_timeout_s",
    "cold_store.roll_s",
]
ZERO_OK = {"seed", "jitter", "start_spread_s", "warmup_s", "linger_ms"}
TEXTS = ["codecs", "transports", "compression", "name"]
LISTS = ["codecs", "transports", "batch", "compression", "connections", "devices", "interval_s"]

# beyond every range, the seed's 2**53 and the devices' 10**12 included
HUGE = st.one_of(st.integers(min_value=10**16, max_value=10**400), st.floats(min_value=1e16, max_value=1e300))
NOT_A_NUMBER = st.one_of(st.text(max_size=5), st.booleans(), st.just([[1]]), st.just({"a": 1}))
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


@pytest.fixture(autouse=True)
def machine_24gb(monkeypatch):
    """The README's machine, so which values are too big does not depend on where the tests run."""
    monkeypatch.setattr(iotbench.model.limits, "machine_memory", lambda: 24 * 10**9)


def _with(path: str, value) -> dict:
    """BASE with the value at a dotted path replaced (tables made on the way)."""
    spec = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    *tables, last = path.split(".")
    node = spec
    for table in tables:
        node = node.setdefault(table, {})
    node[last] = value
    return spec


def _bad_value(path: str) -> st.SearchStrategy:
    negative = st.one_of(st.integers(max_value=-1, min_value=-(10**30)), st.floats(max_value=-1e-9, min_value=-1e30))
    if path in INTS:
        wrong = st.one_of(NOT_A_NUMBER, st.floats())  # 1.0 too: a whole number is asked for
        bad = st.one_of(wrong, negative.filter(lambda v: isinstance(v, int)), HUGE.filter(lambda v: isinstance(v, int)))
    elif path in FLOATS:
        bad = st.one_of(NOT_A_NUMBER, NON_FINITE, negative, HUGE)
    else:  # text: a number, or (for the list dimensions) an empty list
        bad = st.one_of(st.integers(), st.floats(allow_nan=False), st.just([]) if path in LISTS else st.booleans())
    if path not in ZERO_OK and path != "name":
        bad = st.one_of(bad, st.just(0))
    if path in LISTS:
        bad = st.one_of(bad, st.just([]), bad.map(lambda v: [1, v] if path not in TEXTS else ["json", v]))
    return bad


PATHS = INTS + FLOATS + TEXTS


@st.composite
def invalid_specs(draw) -> tuple[dict, str]:
    kind = draw(st.sampled_from(["value", "value", "value", "unknown key", "section", "exclude all"]))
    if kind == "unknown key":
        key = draw(
            st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True).filter(
                lambda k: k not in iotbench.model.spec._KNOWN
            )
        )
        return {**BASE, key: draw(st.integers() | st.text(max_size=5))}, key
    if kind == "section":
        bad = draw(st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)))
        return {**BASE, "transport_options": {"inprocess": bad}}, "transport_options.inprocess"
    if kind == "exclude all":
        codecs = draw(st.lists(st.sampled_from(USABLE_CODECS), min_size=1, max_size=3, unique=True))
        return {**BASE, "codecs": codecs, "exclude": [{"codec": c} for c in codecs]}, "exclude"
    path = draw(st.sampled_from(PATHS))
    return _with(path, draw(_bad_value(path))), path


@SETTINGS
@given(invalid_specs())
def test_one_bad_value_is_a_spec_error_naming_its_key(case):
    raw, key = case
    with pytest.raises(SpecError) as refused:  # any other exception fails the test
        parse_spec(raw)
    message = str(refused.value)
    assert f"spec key '{key}'" in message, message
    assert "\n" not in message


@st.composite
def valid_specs(draw) -> dict:
    small = st.integers(min_value=1, max_value=1000)
    return {
        "codecs": draw(st.lists(st.sampled_from(USABLE_CODECS), min_size=1, max_size=3, unique=True)),
        "transports": ["inprocess"],
        "batch": draw(st.lists(small, min_size=1, max_size=3)),
        "compression": draw(st.lists(st.sampled_from(compression_names()), min_size=1, max_size=2, unique=True)),
        "connections": draw(st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=2)),
        "devices": draw(st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=2)),
        "interval_s": draw(st.lists(st.floats(min_value=0.5, max_value=600), min_size=1, max_size=2)),
        "jitter": draw(st.floats(min_value=0, max_value=0.49)),
        "duration_s": draw(st.floats(min_value=0.5, max_value=60)),
        "warmup_s": draw(st.floats(min_value=0, max_value=10)),
        "repeats": draw(st.integers(min_value=1, max_value=3)),
        "seed": draw(st.integers(min_value=0, max_value=2**40)),
        "linger_ms": draw(st.floats(min_value=0, max_value=1000)),
        "max_inflight": draw(st.integers(min_value=1, max_value=10_000)),
        "transport_options": {
            "inprocess": {"max_buffered_bytes": draw(st.lists(st.integers(65536, 1 << 30), min_size=1, max_size=2))}
        },
        "cold_store": {"roll_bytes": draw(st.integers(65_536, 1 << 30)), "roll_s": draw(st.floats(0.01, 3600))},
    }


@SETTINGS
@given(valid_specs())
def test_a_spec_within_the_limits_parses_to_cells(raw):
    spec = parse_spec(raw)
    cells = spec.cells()
    assert cells and {c.codec for c in cells} == set(raw["codecs"])
