"""Codec benchmarks: encode and decode, single and batch of 100, every codec x compression.

Run: ``pytest tests/benchmarks --benchmark-only --benchmark-json FILE`` for the
figures; ``scripts/test`` (CI) runs each once with ``--benchmark-disable``, as a test
that the timed work is a correct round trip. Each benchmark is grouped by codec; ``extra_info`` carries what the
report needs beside the times: bytes per event single and in a batch, compressed
bytes, events per call (divide a call's time by it for per-event time), the
library and its version. An encode includes the compression of the send and a
decode its decompression, because that is the work a send costs.

Rounds are fixed (pedantic) so the whole suite stays near a minute on a 2-core machine.
"""

from __future__ import annotations

import pytest
from support import need_server

from iotbench.codecs import CODECS, get_codec
from iotbench.compression import compression_names, get_compression
from iotbench.studies.codec_overhead import BAR, GATED, OPS, RECIPES, overhead_rows
from iotbench.studies.codec_table import library_version, payload_sizes
from iotbench.studies.samples import BATCH, sample_readings

CODEC_NAMES = CODECS.names()
ROUNDS = 25
ITERATIONS = {"single": 200, "batch": 4}
SLOW = {"avro-official": 5, "json-stdlib": 2}  # reference codecs: fewer iterations, same rounds


@pytest.fixture(scope="module")
def sample():
    return sample_readings(1000)


_sizes: dict[tuple[str, str], dict[str, float]] = {}


def sizes(name, codec, sample, compression):
    """Bytes per event for the codec and compression (computed once per pair, not per benchmark)."""
    key = (name, compression)
    if key not in _sizes:
        _sizes[key] = payload_sizes(codec, sample, compression)
    return _sizes[key]


@pytest.mark.parametrize("framing", ["single", "batch"])
@pytest.mark.parametrize("op", ["encode", "decode"])
@pytest.mark.parametrize("compression", compression_names())
@pytest.mark.parametrize("name", CODEC_NAMES)
def test_codec(benchmark, sample, name, compression, op, framing):
    codec, comp = get_codec(name), get_compression(compression)
    compress, decompress = comp.compress, comp.decompress
    if framing == "single":
        event, encode, decode, events = sample[5], codec.encode, codec.decode, 1
    else:
        event, encode, decode, events = sample[:BATCH], codec.encode_batch, codec.decode_batch, BATCH
    payload = compress(encode(event))
    if compression == "none":  # no identity call in the timed loop
        work, arg = (encode, event) if op == "encode" else (decode, payload)
    elif op == "encode":
        work, arg = (lambda e: compress(encode(e))), event
    else:
        work, arg = (lambda p: decode(decompress(p))), payload
    assert decode(decompress(payload)) == event  # what is timed is a correct round trip

    benchmark.group = f"codec {name}"
    benchmark.extra_info.update(
        codec=name,
        label=codec.label,
        library=library_version(codec),
        compression=compression,
        op=op,
        framing=framing,
        events_per_call=events,
        payload_bytes=len(payload),
        **sizes(name, codec, sample, compression),
    )
    iterations = max(1, ITERATIONS[framing] // SLOW.get(name, 1))
    benchmark.pedantic(work, args=(arg,), rounds=ROUNDS, iterations=iterations, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable (CI runs each benchmark once, as a test)
        benchmark.extra_info["median_us_per_event"] = benchmark.stats.stats.median * 1e6 / events


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_plugin_overhead(benchmark, name):
    """The plugin against its direct recipe (iotbench.studies.codec_overhead): >= 0.9 of the direct speed
    in a batch of 100; the single-event ratios are recorded in ``extra_info``, not gated.

    Under ``--benchmark-disable`` (CI) the batch operations are timed with fewer pairs and the bar
    is not asserted (a loaded machine moves the ratio, not the code); ``--benchmark-only`` asserts it,
    and the full study (``python -m iotbench.studies.codec_overhead``) is what docs/codecs.md records.
    """
    if name not in RECIPES:
        pytest.skip(f"{name}: no direct recipe in iotbench.studies.codec_overhead (an outside codec is not measured)")
    if not CODECS.status(name)[0]:
        need_server(CODECS.status(name)[1])  # a missing library: a skip on a laptop, a failure with CI=true
    quick = benchmark.disabled
    ops = GATED if quick else OPS
    rows = benchmark.pedantic(
        overhead_rows, args=([name],), kwargs={"repeats": 9 if quick else 31, "ops": ops}, rounds=1, iterations=1
    )
    ratios = {row.op: row.ratio for row in rows}
    benchmark.group = "plugin overhead"
    benchmark.extra_info.update(codec=name, **{f"ratio_{op}": round(ratio, 3) for op, ratio in ratios.items()})
    assert set(GATED) <= set(ratios) and all(r > 0 for r in ratios.values()), ratios
    if quick:
        return  # CI shares its cores with servers and other jobs: the bar is a benchmark's, not a unit test's
    slow = {op: round(ratios[op], 3) for op in GATED if ratios[op] < BAR}
    assert not slow, f"{name}: plugin speed / direct library call under {BAR} at batch {BATCH}: {slow}"
