"""``rate = "max"``: every cell a ramp of trials that brackets its highest sustained rate.

A capped in-process link (``transport_faults.CappedTransport``: at most N sends a second on its
one connection) is the known answer; the search must bracket N, write every trial to
results.jsonl marked as a trial, and record the outcome on the last one.
"""

from __future__ import annotations

import json

import pytest

from iotbench import load_results
from iotbench.cli import main
from iotbench.model.spec import parse_spec
from iotbench.pipeline.runner import run_matrix
from iotbench.transports import TRANSPORTS

CEILING = 2000  # sends per second the capped link takes; batch 1: events per second


@pytest.fixture
def capped():
    TRANSPORTS.register("capped", "transport_faults:CappedTransport")
    yield
    TRANSPORTS.unregister("capped")


def _raw(**extra):
    return {
        "codecs": ["msgpack-msgspec"],
        "transports": ["capped"],
        "batch": [1],
        "devices": 200,
        "interval_s": 0.4,  # the contract rate, 500 events/s: the search's start
        "duration_s": 1.5,
        "warmup_s": 0.5,
        "drain_timeout_s": 3.0,
        "max_inflight": 50,  # a link behind its ceiling holds the schedule at once: the send delay shows it
        "transport_options": {"capped": {"sends_per_s": CEILING}},
        "rate": "max",
        "rate_search": {"factor": 2.0, "precision": 0.2, "max_eps": 20_000},
        **extra,
    }


def test_the_search_brackets_the_links_ceiling(tmp_path, capped):
    results = run_matrix(parse_spec(_raw()), tmp_path)
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(lines) == len(results) >= 4  # every trial written, none hidden
    assert [line["search"]["step"] for line in lines] == list(range(1, len(lines) + 1))
    assert {line["search"]["id"] for line in lines} == {0}
    assert {line["devices"] for line in lines} == {200}  # the rate changes by the interval, not the fleet
    assert lines[0]["target_eps"] == pytest.approx(500)  # the start: the cell's contract rate
    assert all("outcome" not in line["search"] for line in lines[:-1])
    outcome = lines[-1]["search"]["outcome"]
    assert outcome["end"] == "bracketed" and outcome["trials"] == len(lines), outcome
    best, first_not = outcome["sustained_eps"], outcome["not_sustained_eps"]
    # above the ceiling the link's backlog grows by (rate - ceiling)/s: within the rule's 5 % (stored) and
    # 100 ms (send delay) a 2 s trial can pass a few percent over it, never more; below it the link keeps up
    assert 0.8 * CEILING <= best <= 1.06 * CEILING, outcome
    assert 0.9 * CEILING <= first_not <= 1.5 * CEILING, outcome
    assert best < first_not <= (1 + 0.2) * best * 1.01, outcome  # bracketed within the precision (3-digit rates)
    assert outcome["shortfall"], outcome
    rates = {round(line["target_eps"]) for line in lines}
    assert round(best) in rates and round(first_not) in rates
    folders = {line["cold_store"].split("/")[1] for line in lines}
    assert len(folders) == len(lines)  # a folder per trial
    df = load_results(tmp_path)  # the same figures as columns, NaN where not a search's last trial
    assert df["search_step"].tolist() == list(range(1, len(lines) + 1))
    assert df["search_outcome_sustained_eps"].iloc[-1] == best and df["search_outcome_trials"].iloc[:-1].isna().all()


def test_the_cli_prints_each_cells_outcome(tmp_path, capped, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        """
codecs = ["msgpack-msgspec"]
transports = ["capped"]
devices = 200
interval_s = 0.4
duration_s = 1.0
warmup_s = 0.5
drain_timeout_s = 3.0
max_inflight = 50
rate = "max"
[transport_options.capped]
sends_per_s = 2000
[rate_search]
max_eps = 1000
"""
    )
    code = main(["run", str(spec), "--out", str(tmp_path / "out"), "--no-report"])
    out = capsys.readouterr().out
    assert code == 0
    assert "highest sustained rate per cell" in out and "top" in out, out
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    outcome = json.loads(lines[-1])["search"]["outcome"]
    assert outcome == {"sustained_eps": 1000.0, "not_sustained_eps": None, "shortfall": None, "trials": 2, "end": "top"}
