"""Hostile and arbitrary input for every registered codec (hypothesis property tests).

Decoding random bytes or mutated valid payloads either raises a CodecError that
names the codec, or returns readings of the right type that ``validate`` can judge
without raising -- never another exception, never a hang (pytest-timeout), never a
large allocation (the process's peak RSS is checked). 1,000 examples per codec and
per kind of input, so every codec sees at least 2,000 hostile payloads per CI run.
Round trips are also checked on arbitrary valid readings, not only the generator's.
"""

from __future__ import annotations

import os
import resource
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iotbench.codecs import CODECS, CodecError, get_codec
from iotbench.model.telemetry import Reading, validate

CODEC_NAMES = CODECS.names()
HOSTILE_EXAMPLES = int(os.environ.get("IOTBENCH_FUZZ_EXAMPLES", "1000"))
# derandomize: CI runs the same 1,000 examples every time (no flaky reds); set
# IOTBENCH_FUZZ_EXAMPLES higher and IOTBENCH_FUZZ_RANDOM=1 locally to search further.
FUZZ = settings(
    max_examples=HOSTILE_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not os.environ.get("IOTBENCH_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_RSS_GROWTH_KB = 256 * 1024


def decode_safely(codec, payload: bytes) -> None:
    """The property: CodecError naming the codec, or readings validate() can judge."""
    for decode, batched in ((codec.decode, False), (codec.decode_batch, True)):
        try:
            out = decode(payload)
        except CodecError as exc:
            assert str(exc).startswith(f"{codec.name}:"), str(exc)
            continue
        readings = out if batched else [out]
        assert isinstance(readings, list)
        for reading in readings:
            assert type(reading) is Reading
            reason = validate(reading)  # must not raise, whatever the fields hold
            assert reason is None or isinstance(reason, str)


@pytest.fixture
def rss_guard():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < MAX_RSS_GROWTH_KB, f"peak RSS grew by {grown} KB while decoding hostile payloads"


def seed_payloads(codec, readings) -> list[bytes]:
    return [
        codec.encode(readings[0]),
        codec.encode(readings[-1]),
        codec.encode_batch(readings[:3]),
        codec.encode_batch(readings[:1]),
    ]


@st.composite
def mutations(draw, seeds: list[bytes]) -> bytes:
    """A valid payload with 1-4 edits: flipped/overwritten bytes, cuts, insertions, repeats."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "set", "truncate", "insert", "delete", "repeat")))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[i] = draw(st.sampled_from((0x00, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255)))))
        elif op == "truncate":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=9))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 8))]
        elif op == "repeat":
            data[i:i] = data[i : i + draw(st.integers(1, 16))] * draw(st.integers(1, 50))
    return bytes(data)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", CODEC_NAMES)
def test_random_bytes_only_raise_codec_error(name, rss_guard):
    codec = get_codec(name)
    seen: list[bytes] = []

    @FUZZ
    @given(st.one_of(st.binary(max_size=256), st.binary(min_size=2, max_size=64).map(lambda b: b"\xc3\x01" + b)))
    def check(payload: bytes) -> None:
        seen.append(payload)
        decode_safely(codec, payload)

    check()
    assert len(seen) >= HOSTILE_EXAMPLES  # the promise is a count, so count


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", CODEC_NAMES)
def test_mutated_payloads_only_raise_codec_error(name, readings, rss_guard):
    codec = get_codec(name)
    seeds = seed_payloads(codec, readings)
    seen: list[bytes] = []

    @FUZZ
    @given(mutations(seeds))
    def check(payload: bytes) -> None:
        seen.append(payload)
        decode_safely(codec, payload)

    check()
    assert len(seen) >= HOSTILE_EXAMPLES
    assert len(set(seen) - set(seeds)) > HOSTILE_EXAMPLES // 2  # mostly real mutations, not the seeds


VALID_READINGS = st.builds(
    Reading,
    device_id=st.text(min_size=1, max_size=40),
    seq=st.integers(0, 2**63 - 1),
    observed_at=st.datetimes(datetime(1950, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
    temperature_c=st.floats(-60, 100),
    humidity_pct=st.floats(0, 100),
    smoke_alarm=st.booleans(),
    water_leak=st.booleans(),
    battery_pct=st.floats(0, 100),
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", CODEC_NAMES)
def test_arbitrary_valid_readings_round_trip_exactly(name):
    codec = get_codec(name)

    @settings(max_examples=200, deadline=None, database=None)
    @given(st.lists(VALID_READINGS, min_size=1, max_size=5))
    def check(batch: list[Reading]) -> None:
        assert codec.decode(codec.encode(batch[0])) == batch[0]
        assert codec.decode_batch(codec.encode_batch(batch)) == batch

    check()
