"""The codec section reads real pytest-benchmark JSON (``iotbench report DIR --benchmarks FILE``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from report_support import small_run  # noqa: F401 - a fixture

from iotbench.cli import main
from iotbench.report.benchmarks import load_benchmarks

pytestmark = pytest.mark.server  # every test here starts a server

BENCH = """
from iotbench.codecs import get_codec
from iotbench.studies.samples import sample_readings

READING = sample_readings(1)[0]


def test_encode_msgpack(benchmark):
    codec = get_codec("msgpack")
    benchmark.group = "codec msgpack"
    benchmark.extra_info.update(codec="msgpack", op="encode", framing="single", compression="none",
                                bytes_single=len(codec.encode(READING)), library="msgpack")
    benchmark(codec.encode, READING)
    benchmark.extra_info["median_us_per_event"] = benchmark.stats.stats.median * 1e6


def test_something_else(benchmark):
    benchmark(sum, [1, 2, 3])
"""


@pytest.fixture(scope="module")
def benchmark_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bench")
    (folder / "test_tiny_bench.py").write_text(BENCH)
    out = folder / "bench.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--benchmark-only",
            "--benchmark-min-rounds=5",
            "--benchmark-max-time=0.05",
            f"--benchmark-json={out}",
            "-o",
            "addopts=",
            "--rootdir",
            str(folder),
            str(folder / "test_tiny_bench.py"),
        ],
        check=True,
        timeout=120,
        capture_output=True,
        cwd=folder,
    )
    return out


def test_load_benchmarks_keeps_extra_info(benchmark_json: Path) -> None:
    frame = load_benchmarks(benchmark_json)
    raw = next(b for b in json.loads(benchmark_json.read_text())["benchmarks"] if b["name"] == "test_encode_msgpack")
    row = frame[frame["benchmark"] == "test_encode_msgpack"].iloc[0]
    assert sorted(frame["benchmark"]) == ["test_encode_msgpack", "test_something_else"]
    assert row["bytes_single"] == raw["extra_info"]["bytes_single"] > 0
    assert row["median_us"] == pytest.approx(raw["stats"]["median"] * 1e6)


def test_report_includes_the_benchmarks(small_run: Path, benchmark_json: Path) -> None:
    assert main(["report", str(small_run), "--benchmarks", str(benchmark_json)]) == 0
    html = (small_run / "report.html").read_text()
    codecs = html[html.index('id="codecs"') : html.index('id="transports"')]
    assert "test_encode_msgpack" in codecs and "bytes_single" in codecs
    assert "encode single µs/reading" in codecs  # the codec suite's shape becomes a per-codec table
    assert "Schema evolution" in codecs


def test_a_file_that_is_not_benchmark_json_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "benchmarks"}')
    with pytest.raises(ValueError, match="benchmark"):
        load_benchmarks(bad)
