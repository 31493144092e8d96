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

BENCH = '''
from iotbench.codecs import get_codec
from iotbench.codec_table import sample_readings

READING = sample_readings(1)[0]


def test_encode_msgpack(benchmark):
    codec = get_codec("msgpack")
    benchmark.group = "msgpack"
    benchmark.extra_info["bytes_single"] = len(codec.encode(READING))
    benchmark(codec.encode, READING)
'''


@pytest.fixture(scope="module")
def benchmark_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bench")
    (folder / "test_tiny_bench.py").write_text(BENCH)
    out = folder / "bench.json"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-only",
                    "--benchmark-min-rounds=5", "--benchmark-max-time=0.05", f"--benchmark-json={out}",
                    "-o", "addopts=", "--rootdir", str(folder), str(folder / "test_tiny_bench.py")],
                   check=True, timeout=120, capture_output=True, cwd=folder)
    return out


def test_load_benchmarks_keeps_extra_info(benchmark_json: Path) -> None:
    frame = load_benchmarks(benchmark_json)
    raw = json.loads(benchmark_json.read_text())["benchmarks"][0]
    assert list(frame["benchmark"]) == ["test_encode_msgpack"]
    assert frame.loc[0, "bytes_single"] == raw["extra_info"]["bytes_single"] > 0
    assert frame.loc[0, "median_us"] == pytest.approx(raw["stats"]["median"] * 1e6)


def test_report_includes_the_benchmarks(small_run: Path, benchmark_json: Path) -> None:
    assert main(["report", str(small_run), "--benchmarks", str(benchmark_json)]) == 0
    html = (small_run / "report.html").read_text()
    codecs = html[html.index('id="codecs"'):html.index('id="transports"')]
    assert "test_encode_msgpack" in codecs and "bytes_single" in codecs
    assert "Schema evolution" in codecs


def test_a_file_that_is_not_benchmark_json_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "benchmarks"}')
    with pytest.raises(ValueError, match="benchmark"):
        load_benchmarks(bad)
