"""One small real run shared by the report, results-API, notebook and browser tests.

Made once per test session (by ``iotbench run``, which writes the report at its
end), in a temp folder: json and msgpack over the in-process transport at batch 1
and 10, and over MQTT QoS 0 and 1 on a real mosquitto when it is installed; two
repeats each, so the report has intervals to judge significance with.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from iotbench.cli import main

_RUNS: dict[str, Path] = {}

BASE_SPEC = """
name = "report-test"
codecs = ["json", "msgpack"]
batch = [1, 10]
devices = 1000
interval_s = 1
duration_s = 1.5
warmup_s = 0.5
repeats = 2
drain_timeout_s = 5
"""
MQTT_SPEC = """
transports = ["inprocess", "mqtt"]
exclude = [{transport = "mqtt", batch = 10}]
[transport_options.mqtt]
qos = [0, 1]
"""


def mosquitto_available() -> bool:
    return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()


def make_small_run(root: Path) -> Path:
    if "run" not in _RUNS:
        spec = root / "spec.toml"
        extra = MQTT_SPEC if mosquitto_available() else 'transports = ["inprocess"]\n'
        spec.write_text(BASE_SPEC + extra)
        out = root / "run"
        code = main(["run", str(spec), "--out", str(out)])
        assert code == 0, f"iotbench run exited {code}"
        _RUNS["run"] = out
    return _RUNS["run"]


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results folder of the shared small run (report.html written by `iotbench run`)."""
    return make_small_run(tmp_path_factory.mktemp("report-run"))
