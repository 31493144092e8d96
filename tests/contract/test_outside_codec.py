"""A codec from another installed package, registered through the ``iotbench.codecs`` entry point,
is listed, runs in a spec and passes the codec contract tests -- with no edit to iotbench.

The test builds a tiny package in a temp folder, pip-installs it into the running environment
(removed again at the end) and asks a fresh interpreter each time, so entry points are read anew.
The package declares only the required parts and ``errors``: the optional ``library`` and
``for_model`` take the contract's defaults (``iotbench.codecs.base.OPTIONAL``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import need_modules

ROOT = Path(__file__).resolve().parents[2]
NAME = "tiny-json"
DISTRIBUTION = "iotbench-tiny-codec"

PYPROJECT = f"""
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{DISTRIBUTION}"
version = "0.1.0"
dependencies = ["iotbench", "msgspec"]

[project.entry-points."iotbench.codecs"]
{NAME} = "tiny_codec"

[tool.setuptools]
py-modules = ["tiny_codec"]
"""

LABEL = "JSON (an outside package)"
MODULE = f'''"""JSON through msgspec, as an outside package would write it: one object per event, an array per batch."""

import msgspec

from iotbench.model.telemetry import Reading

name = "{NAME}"
label = "{LABEL}"
binary = False
errors = (msgspec.DecodeError, UnicodeDecodeError)

_encoder = msgspec.json.Encoder()
encode = encode_batch = _encoder.encode
decode = msgspec.json.Decoder(Reading).decode
decode_batch = msgspec.json.Decoder(list[Reading]).decode
'''

SPEC = f"""
codecs = ["{NAME}"]
transports = ["inprocess"]
batch = [1, 10]
devices = 200
interval_s = 1
duration_s = 1
warmup_s = 0.5
drain_timeout_s = 5
"""


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, capture_output=True, text=True, timeout=180)


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=240, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory):
    need_modules("setuptools", extra="dev")  # building the tiny package without isolation needs it; CI fails without
    package = tmp_path_factory.mktemp("tiny-codec")
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "tiny_codec.py").write_text(MODULE)
    _pip("install", "--no-deps", "--no-build-isolation", "-q", str(package))
    try:
        yield package
    finally:
        _pip("uninstall", "-y", "-q", DISTRIBUTION)


IOTBENCH = [sys.executable, "-c", "import sys; from iotbench.cli import main; sys.exit(main())"]


@pytest.mark.slow
def test_the_outside_codec_is_listed_as_usable(installed):
    listed = _run(*IOTBENCH, "list")
    assert listed.returncode == 0, listed.stderr
    row = next((line for line in listed.stdout.splitlines() if re.search(rf"(^|\s){NAME}\s", line)), None)
    assert row is not None, listed.stdout
    assert LABEL in row and "not usable" not in row, row


@pytest.mark.slow
def test_a_spec_runs_the_outside_codec_end_to_end(installed, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    ran = _run(*IOTBENCH, "run", str(spec), "--out", str(out))
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["codec"], r["transport"], r["batch"]) for r in results] == [
        (NAME, "inprocess", 1),
        (NAME, "inprocess", 10),
    ]
    for result in results:
        assert result["status"] == "ok", result.get("error")
        assert result["events_lost"] == 0 and result["events_rejected"] == 0
        assert result["events_stored"] == result["events_sent"] > 0


@pytest.mark.slow
def test_the_outside_codec_passes_the_contract_tests(installed):
    # the contract, and hostile input: its declared errors reach the consumer as CodecError only
    ran = _run(
        sys.executable,
        "-m",
        "pytest",
        "tests/contract/test_codec_contract.py",
        "tests/unit/test_codec_bad_input.py",
        "tests/unit/test_codec_fuzz.py",
        "-k",
        NAME,
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
    )
    summary = ran.stdout.strip().splitlines()[-1] if ran.stdout.strip() else ""
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    # round trips with every compression, garbage, framing mix-ups, declarations, the evolution check (13);
    # huge length claims, oversized garbage, a big batch, implausible readings (4); fuzz (3)
    assert passed and int(passed.group(1)) >= 20, summary
    assert "failed" not in summary and "error" not in summary, summary
