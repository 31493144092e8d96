"""A bad spec gets one clear line naming the key and the fix, exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from iotbench.spec import SpecError, parse_spec


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "iotbench.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


@pytest.mark.parametrize(("toml", "expected"), [
    ('codecs = ["jsn"]', "spec key 'codecs': unknown codec 'jsn'; did you mean 'json'?"),
    ("duration_s = -5", "spec key 'duration_s': -5.0 is negative; give a number > 0"),
    ("durations_s = 5", "spec key 'durations_s': unknown key; did you mean 'duration_s'?"),
    ('transports = ["inproc"]', "spec key 'transports': unknown transport 'inproc'; did you mean 'inprocess'?"),
    ("batch = [0]", "spec key 'batch': 0 is zero; give a number > 0"),
    ('devices = "many"', "spec key 'devices': 'many' is a str; give a int"),
    ("jitter = 0.7", "spec key 'jitter': 0.7 is outside 0..0.5"),
    ('exclude = [{codex = "json"}]', "spec key 'exclude.codex': is not a matrix dimension"),
    ("[transport_options.inprocess]\nmax_queue = 5", "spec key 'transport_options.inprocess.max_queue': unknown option; did you mean 'max_queued'?"),
    ("duration_s = ", "not valid TOML"),
])
def test_cli_names_the_key_and_exits_2(tmp_path, toml, expected):
    spec = tmp_path / "bad.toml"
    spec.write_text(toml + "\n")
    result = _cli("run", str(spec), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()  # nothing ran


def test_missing_spec_file_is_a_usage_error(tmp_path):
    result = _cli("run", str(tmp_path / "nope.toml"))
    assert result.returncode == 2 and "cannot read it" in result.stderr and "Traceback" not in result.stderr


def test_exclusions_and_option_lists_shape_the_matrix():
    spec = parse_spec({"codecs": ["json", "msgpack"], "batch": [1, 100], "repeats": 2,
                       "exclude": [{"codec": "json", "batch": 1}],
                       "transport_options": {"inprocess": {"max_queued": [10, 1000]}}})
    cells = spec.cells()
    assert len(cells) == 3 * 2 * 2  # 4 combinations - 1 excluded, x 2 queue sizes, x 2 repeats
    assert not [c for c in cells if c.codec == "json" and c.batch == 1]
    assert {dict(c.transport_options)["max_queued"] for c in cells} == {10, 1000}
    with pytest.raises(SpecError, match="'repeats'"):
        parse_spec({"repeats": 0})


def test_list_shows_every_plugin_and_its_status():
    result = _cli("list")
    assert result.returncode == 0
    for name in ("json", "msgpack", "inprocess", "zstd"):
        assert name in result.stdout


def test_matrix_tables_union_their_cells_and_reject_non_dimensions():
    spec = parse_spec({"devices": 10, "matrix": [
        {"codecs": ["json", "msgpack"], "batch": [100]},
        {"codecs": ["json"], "batch": [1, 100]},
    ]})
    assert [(c.codec, c.batch) for c in spec.cells()] == [("json", 100), ("msgpack", 100), ("json", 1)]
    assert all(c.devices == 10 for c in spec.cells())
    with pytest.raises(SpecError, match=r"matrix\[0\]\.duration_s"):
        parse_spec({"matrix": [{"duration_s": 3}]})


def test_default_spec_covers_every_usable_codec_and_transport():
    from iotbench.codecs import CODECS
    from iotbench.spec import default_spec
    from iotbench.transports import TRANSPORTS

    cells = default_spec().cells()
    assert {c.codec for c in cells} == {n for n in CODECS.names() if CODECS.status(n)[0]}
    assert {c.transport for c in cells} == {n for n in TRANSPORTS.names() if TRANSPORTS.status(n)[0]}
    assert {c.target_eps for c in cells} == {100_000 / 60}


def test_sigterm_stops_a_run_like_ctrl_c(tmp_path):
    import signal
    import time

    spec = tmp_path / "spec.toml"
    spec.write_text('codecs = ["json"]\ndevices = 1000\ninterval_s = 1\nduration_s = 60\nwarmup_s = 0\n')
    proc = subprocess.Popen([sys.executable, "-m", "iotbench.cli", "run", str(spec), "--out", str(tmp_path / "o"),
                             "--no-report"], stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted; servers were stopped" in err
