"""A bad spec gets one clear line naming the key and the fix, exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import assert_spec_refused, cli

from iotbench.model.spec import SpecError, parse_spec


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('codecs = ["jsn"]', "spec key 'codecs': unknown codec 'jsn'; did you mean 'json'?"),
        ("duration_s = -5", "spec key 'duration_s': -5.0 is negative; give a number > 0"),
        ("durations_s = 5", "spec key 'durations_s': unknown key; did you mean 'duration_s'?"),
        ('transports = ["inproc"]', "spec key 'transports': unknown transport 'inproc'; did you mean 'inprocess'?"),
        ("batch = [0]", "spec key 'batch': 0 is zero; give a number > 0"),
        ('devices = "many"', "spec key 'devices': 'many' is a str; give a int"),
        ("jitter = 0.7", "spec key 'jitter': 0.7 is outside 0..0.5"),
        ('exclude = [{codex = "json"}]', "spec key 'exclude.codex': is not a matrix dimension"),
        (
            "[transport_options.inprocess]\nmax_buffered = 5",
            "spec key 'transport_options.inprocess.max_buffered': unknown option; did you mean 'max_buffered_bytes'?",
        ),
        ("duration_s = ", "not valid TOML"),
    ],
)
def test_cli_names_the_key_and_exits_2(tmp_path, toml, expected):
    assert_spec_refused(tmp_path, toml, expected)


def test_missing_spec_file_is_a_usage_error(tmp_path):
    result = cli("run", str(tmp_path / "nope.toml"))
    assert result.returncode == 2 and "cannot read it" in result.stderr and "Traceback" not in result.stderr


def test_exclusions_and_option_lists_shape_the_matrix():
    spec = parse_spec(
        {
            "codecs": ["json", "msgpack"],
            "batch": [1, 100],
            "repeats": 2,
            "exclude": [{"codec": "json", "batch": 1}],
            "transport_options": {"inprocess": {"max_buffered_bytes": [65536, 1048576]}},
        }
    )
    cells = spec.cells()
    assert len(cells) == 3 * 2 * 2  # 4 combinations - 1 excluded, x 2 queue sizes, x 2 repeats
    assert not [c for c in cells if c.codec == "json" and c.batch == 1]
    assert {dict(c.transport_options)["max_buffered_bytes"] for c in cells} == {65536, 1048576}
    with pytest.raises(SpecError, match="'repeats'"):
        parse_spec({"repeats": 0})


def test_list_shows_every_plugin_and_its_status():
    result = cli("list")
    assert result.returncode == 0
    for name in ("json", "msgpack", "inprocess", "zstd"):
        assert name in result.stdout


def test_matrix_tables_union_their_cells_and_reject_non_dimensions():
    spec = parse_spec(
        {
            "devices": 10,
            "matrix": [
                {"codecs": ["json", "msgpack"], "batch": [100]},
                {"codecs": ["json"], "batch": [1, 100]},
            ],
        }
    )
    assert [(c.codec, c.batch) for c in spec.cells()] == [("json", 100), ("msgpack", 100), ("json", 1)]
    assert all(c.devices == 10 for c in spec.cells())
    with pytest.raises(SpecError, match=r"matrix\[0\]\.duration_s"):
        parse_spec({"matrix": [{"duration_s": 3}]})


def test_default_spec_covers_every_usable_codec_and_transport():
    from iotbench.codecs import CODECS
    from iotbench.model.spec import default_spec
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
    proc = subprocess.Popen(
        [sys.executable, "-m", "iotbench.cli", "run", str(spec), "--out", str(tmp_path / "o"), "--no-report"],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted; servers were stopped" in err


# ---- issue 16, item 8: every value checked at load; one line, exit 2, nothing written ----------

GB = 10**9


@pytest.fixture
def machine_24gb(monkeypatch):
    """The README's machine (24 GB), so the memory limits do not depend on where the tests run."""
    import iotbench.model.limits

    monkeypatch.setattr(iotbench.model.limits, "machine_memory", lambda: 24 * GB)


@pytest.mark.parametrize(
    ("toml", "key", "says"),
    [
        ("[transport_options]\ninprocess = 5", "transport_options.inprocess", "is not a table"),
        (
            'codecs = ["json", "msgpack"]\nexclude = [{codec = "json"}, {codec = "msgpack"}]',
            "exclude",
            "remove every cell",
        ),
        (
            'transports = ["mqtt"]\n[transport_options.mqtt]\nurl = "mqtt://bob:s3cret@broker.example:1883"',
            "transport_options.mqtt.url",
            "IOTBENCH_MQTT_URL",
        ),
        (
            'transports = ["amqp"]\n[transport_options.amqp]\nurl = ["amqp://broker.example", "amqp://bob:s3cret@h"]',
            "transport_options.amqp.url",
            "IOTBENCH_AMQP_PASSWORD",
        ),
        ('transports = ["mqtt"]\n[transport_options.mqtt]\nqos = 7', "transport_options.mqtt.qos", "use one of 0, 1"),
        (
            'transports = ["kafka"]\n[transport_options.kafka]\nmax_batch_size = 1',
            "transport_options.kafka.max_batch_size",
            "from 1024 to 1048576",
        ),
        (
            'transports = ["http"]\n[transport_options.http]\nconnect_timeout_s = nan',
            "transport_options.http.connect_timeout_s",
            "not a finite number",
        ),
        ("devices = 1_000_000_000", "devices", "above 12,000,000 (each simulated device takes ~1 KB"),
        ("batch = 10_000_000_000", "batch", "above 100,000 (a batch is one publication"),
        ("devices = 1_000_000\ninterval_s = 1e-9", "interval_s", "below 0.001"),
        ("devices = 1_000_000\ninterval_s = 0.01", "interval_s", "100,000,000 events/s, above 1,000,000"),
        ("devices = 100_000\ninterval_s = 1\nduration_s = 86_400", "duration_s", "in the ledgers"),
        (
            "devices = 100_000\ninterval_s = 0.1\nbatch = 100_000\nmax_inflight = 100_000",
            "max_inflight",
            "lower max_inflight to at most",
        ),
        ("devices = 1\ninterval_s = 0.001\nduration_s = 80_000", "duration_s", "readings per device, above 16,777,215"),
        ("duration_s = 100_000", "duration_s", "above 86,400"),
        ("duration_s = nan", "duration_s", "nan is not a finite number"),
        ("seed = -3", "seed", "-3 is negative"),
        ("linger_ms = inf", "linger_ms", "inf is not a finite number"),
        ("connections = 1_000_000", "connections", "open-file"),
        ("repeats = 1000\nbatch = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]", "repeats", "22,000 cell runs"),
        ("[cold_store]\nroll_bytes = 1", "cold_store.roll_bytes", "below 65,536"),
    ],
)
def test_a_spec_no_machine_could_run_is_refused_at_load(tmp_path, monkeypatch, capsys, machine_24gb, toml, key, says):
    import signal

    from iotbench.cli import main

    monkeypatch.setattr(signal, "signal", lambda *args: None)  # main() would keep its SIGTERM handler in pytest
    monkeypatch.chdir(tmp_path)  # the default out folder (reports/) would appear here
    spec = tmp_path / "spec.toml"
    spec.write_text(toml + "\n")
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert main(["run", str(spec)]) == 2
    err = capsys.readouterr().err
    first, second = err.splitlines()  # one line per run, no traceback
    assert first == second and first.startswith(f"iotbench: error: spec key '{key}': ") and says in first, first
    assert "s3cret" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]  # no out folder, no reports/, nothing


def test_each_transport_option_variant_is_built_once_at_load(monkeypatch):
    # a bad value in a list names itself; a combination no single value explains names the section
    with pytest.raises(
        SpecError, match=r"'transport_options\.inprocess\.max_buffered_bytes': inprocess max_buffered_bytes=0 must"
    ):
        parse_spec({"transport_options": {"inprocess": {"max_buffered_bytes": [65536, 0]}}})
    with pytest.raises(SpecError, match=r"'transport_options\.http': mode='http2', server='uvicorn' together"):
        parse_spec({"transports": ["http"], "transport_options": {"http": {"mode": "http2", "server": "uvicorn"}}})


def test_an_out_path_that_is_a_file_is_a_usage_error(tmp_path, capsys, monkeypatch):
    import signal

    from iotbench.cli import main

    monkeypatch.setattr(signal, "signal", lambda *args: None)
    spec, taken = tmp_path / "spec.toml", tmp_path / "taken"
    spec.write_text("devices = 10\n")
    taken.write_text("not a folder")
    assert main(["run", str(spec), "--out", str(taken)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == f"iotbench: error: --out {taken}: is a file; give a folder (it is made if missing)"
