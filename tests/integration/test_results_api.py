"""iotbench.load_results: one flat row per cell run, columns as documented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_support import small_run  # noqa: F401 - a fixture

import iotbench
from iotbench.results_api import RESULT_COLUMNS, load_results, variant_label

pytestmark = pytest.mark.server  # every test here starts a server


def test_public_api_exports_load_results() -> None:
    assert "load_results" in iotbench.__all__
    assert iotbench.load_results is load_results


def test_one_row_per_cell_run_with_flat_columns(small_run: Path) -> None:
    lines = [json.loads(x) for x in (small_run / "results.jsonl").read_text().splitlines() if x.strip()]
    df = load_results(small_run)
    assert len(df) == len(lines)
    first, row = lines[0], df.iloc[0]
    assert row["cell"] == first["cell"] and row["repeat"] == first["repeat"]
    assert row["latency_e2e_received_p99_ms"] == first["latency_ms"]["e2e_received"]["p99"]
    assert row["latency_publish_p50_ms"] == first["latency_ms"]["publish"]["p50"]
    assert row["payload_bytes_mean"] == first["payload_bytes"]["mean"]
    assert row["events_per_send"] == pytest.approx(first["events_sent"] / first["sends"])
    assert row["sustained"] == pytest.approx(first["throughput_eps"] / first["target_eps"])
    assert "histograms" not in df.columns  # encoded histograms stay in the JSON
    assert all(not isinstance(v, dict) for v in df.iloc[0].values)  # flat: no nested objects left
    assert df["cold_store_bytes"].notna().all() and (df["cold_store_bytes_per_event"] > 0).all()


def test_every_column_is_documented(small_run: Path) -> None:
    df = load_results(small_run)
    first = json.loads((small_run / "results.jsonl").read_text().splitlines()[0])
    nested = [k for k, v in first.items() if isinstance(v, dict)]
    for col in df.columns:
        assert col in RESULT_COLUMNS or col.startswith("option_") or any(col.startswith(k + "_") for k in nested), (
            f"column {col!r} is neither in RESULT_COLUMNS nor a flattened object of the record"
        )
    doc = (Path(__file__).resolve().parents[2] / "docs" / "results.md").read_text()
    missing = [k for k in RESULT_COLUMNS if f"`{k}`" not in doc]
    assert not missing, f"docs/results.md does not document {missing}"


def test_variant_label_and_options(tmp_path: Path) -> None:
    assert variant_label("mqtt", {}) == "mqtt"
    assert variant_label("mqtt", {"tls": True, "qos": 1}) == "mqtt[qos=1,tls=true]"
    record = {
        "cell": "c",
        "repeat": 0,
        "codec": "json",
        "compression": "zstd",
        "transport": "mqtt",
        "transport_options": {"qos": 1},
        "status": "ok",
        "events_sent": 10,
        "sends": 0,
        "target_eps": 0,
        "latency_ms": {},
        "payload_bytes": {},
        "send_bytes": {},
        "cold_store": "gone",
        "transport_counters": {"retries": 3},
        "schema_version": 1,
    }
    (tmp_path / "results.jsonl").write_text(json.dumps(record) + "\n\n")
    df = load_results(tmp_path)
    assert df.loc[0, "variant"] == "mqtt[qos=1]" and df.loc[0, "option_qos"] == 1
    assert df.loc[0, "serialization"] == "json+zstd"
    assert df.loc[0, "transport_counters_retries"] == 3  # keys added to the record later become columns
    assert df.loc[0, "events_per_send"] is None or df["events_per_send"].isna().all()


def test_bad_folders_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="iotbench run --out"):
        load_results(tmp_path / "nowhere")
    (tmp_path / "results.jsonl").write_text('{"cell": "a"}\n{"cell": \n')
    with pytest.raises(ValueError, match=r"results.jsonl:2"):
        load_results(tmp_path)


def test_newer_schema_loads_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "results.jsonl").write_text(json.dumps({"cell": "a", "repeat": 0, "schema_version": 99}) + "\n")
    with pytest.warns(UserWarning, match="newer"):
        df = load_results(tmp_path)
    assert len(df) == 1
