"""The decision report: written by `iotbench run`, and every number in the decision traced.

The recomputation below deliberately does not use iotbench's results API: it reads
results.jsonl with the json module, so a flattening bug cannot hide itself.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from report_support import small_run  # noqa: F401 - a fixture
from support import need_server

from iotbench.cli import main

pytestmark = pytest.mark.server  # every test here starts a server

AGG = {"median": statistics.median, "mean": statistics.fmean, "sum": sum, "min": min, "max": max, "count": len}


def raw_records(folder: Path) -> dict[tuple[str, int], dict[str, Any]]:
    out = {}
    for line in (folder / "results.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            out[(r["cell"], r["repeat"])] = r
    return out


def raw_metric(r: dict[str, Any], name: str) -> float | None:
    m = re.fullmatch(r"latency_(send_delay|publish|e2e_received|e2e_stored)_(p50|p90|p99|p999|max)_ms", name)
    if m:
        return r["latency_ms"][m.group(1)][m.group(2)]
    m = re.fullmatch(r"(payload_bytes|send_bytes)_(mean|min|max)", name)
    if m:
        return r[m.group(1)][m.group(2)]
    if name == "sustained":
        return r["throughput_eps"] / r["target_eps"]
    return r[name]


SCENARIO_EPS = 100_000 / 60  # Fabrikam: 100,000 devices, one reading a minute
SCENARIO_MONTH = 100_000 * 1440 * 30  # events in a 30-day month


def recompute(recipe: dict[str, Any], records: dict[tuple[str, int], dict[str, Any]]) -> float:
    args = [recompute(x, records) for x in recipe.get("args", [])]
    if recipe.get("op") == "pct_less":
        a, b = args
        return 100.0 * (b - a) / b
    if recipe.get("op") == "throughput_units":  # 1,000 events/s or 1 MB/s per TU, whichever binds
        (size,) = args
        return max(math.ceil(SCENARIO_EPS / 1000), math.ceil(SCENARIO_EPS * size / 1048576))
    if recipe.get("op") == "ingress_units_month":  # one 64 KB unit per started 64 KB of each send
        size, batch = args
        sends, rest = divmod(SCENARIO_MONTH, int(batch))
        units = sends * math.ceil(batch * size / 65536) + (math.ceil(rest * size / 65536) if rest else 0)
        return units / 1e6
    assert not recipe.get("op"), f"unknown op {recipe['op']}"
    rows = [records[(cell, repeat)] for cell, repeat in recipe["rows"]]  # KeyError: a row not in the file
    assert rows or recipe["agg"] == "count", f"a figure over no rows: {recipe}"
    values = [raw_metric(r, recipe["metric"]) for r in rows]
    assert None not in values, f"{recipe['metric']} missing in a row the figure names"
    return AGG[recipe["agg"]](values) * recipe["scale"]


class DecisionParser(HTMLParser):
    """Collects the decision section's figures, and its text with figures, facts and code taken out."""

    def __init__(self) -> None:
        super().__init__()
        self.in_decision = False
        self.depth = 0
        self.skip = 0  # inside a fig/fact span or code
        self.figures: list[tuple[dict[str, Any], str]] = []
        self._fig: dict[str, Any] | None = None
        self._fig_text = ""
        self.bare_text: list[str] = []
        self.all_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("id") == "decision":
            self.in_decision = True
        if not self.in_decision:
            return
        if tag == "section":
            self.depth += 1
        classes = (a.get("class") or "").split()
        if tag == "span" and "fig" in classes:
            self._fig, self._fig_text = json.loads(a["data-recipe"] or "{}"), ""
        if (tag == "span" and ("fig" in classes or "fact" in classes)) or tag == "code" or self.skip:
            self.skip += 1

    def handle_endtag(self, tag: str) -> None:
        if not self.in_decision:
            return
        if self.skip and tag in ("span", "code"):
            self.skip -= 1
            if self.skip == 0 and self._fig is not None:
                self.figures.append((self._fig, self._fig_text))
                self._fig = None
        if tag == "section":
            self.depth -= 1
            if self.depth == 0:
                self.in_decision = False

    def handle_data(self, data: str) -> None:
        if not self.in_decision:
            return
        self.all_text.append(data)
        if self._fig is not None:
            self._fig_text += data
        elif not self.skip:
            self.bare_text.append(data)


def parse_decision(path: Path) -> DecisionParser:
    parser = DecisionParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_run_writes_the_report_with_the_decision_first(small_run: Path) -> None:
    report = small_run / "report.html"
    assert report.is_file(), "iotbench run did not write report.html"
    text = report.read_text(encoding="utf-8")
    assert text.index('id="decision"') < text.index('id="codecs"') < text.index('id="cost"')
    for anchor in ("transports", "matrix", "method", "raw"):
        assert f'id="{anchor}"' in text
    assert 'href="results.jsonl"' in text and 'href="results.csv"' in text
    assert (small_run / "results.csv").is_file()
    assert "http://" not in text.replace('href="http', "") and "https://" not in text  # nothing to fetch
    parsed = parse_decision(report)
    assert "Serialization:" in "".join(parsed.all_text)


def test_every_number_in_the_decision_recomputes_from_results_jsonl(small_run: Path) -> None:
    parsed = parse_decision(small_run / "report.html")
    records = raw_records(small_run)
    assert len(parsed.figures) >= 5, "the decision should carry its numbers"
    for recipe, shown in parsed.figures:
        value = recompute(recipe, records)
        assert f"{value:,.{recipe['digits']}f}" == shown.strip(), f"{shown!r} does not recompute: {recipe}"
    # no number in the decision escapes: outside figures, facts and code names there are no digits
    # (except in identifiers such as p99 or e2e)
    bare = " ".join(parsed.bare_text)
    bare = re.sub(r"\b[A-Za-z]+\d+\w*\b", "", bare)
    leaks = re.findall(r".{0,30}\d.{0,30}", bare)
    assert not leaks, f"numbers without a recipe or a source: {leaks}"


def test_the_chosen_serialization_is_the_smallest_qualifying_one(small_run: Path) -> None:
    records = list(raw_records(small_run).values())
    ok = [
        r
        for r in records
        if r["status"] == "ok"
        and r["events_lost"] == 0
        and r["events_failed"] == 0
        and r["throughput_eps"] >= 0.95 * r["target_eps"]
    ]
    smallest_batch = min(r["batch"] for r in ok)
    sizes: dict[str, list[float]] = {}
    for r in ok:
        if r["batch"] == smallest_batch:
            name = r["codec"] + ("" if r["compression"] == "none" else "+" + r["compression"])
            sizes.setdefault(name, []).append(r["payload_bytes"]["mean"])
    best = min(sizes, key=lambda k: statistics.median(sizes[k]))
    answer = "".join(parse_decision(small_run / "report.html").all_text)
    assert re.search(rf"Serialization:\s*{re.escape(best)}\s*\.", answer), answer[:300]


def test_the_chosen_protocol_has_the_lowest_p99_among_real_transports(small_run: Path) -> None:
    records = list(raw_records(small_run).values())
    if not any(r["transport"] == "mqtt" for r in records):
        need_server("mosquitto, for a run with a real protocol to decide between")
    answer = "".join(parse_decision(small_run / "report.html").all_text)
    serialization = re.search(r"Serialization:\s*(\S+?)\s*\.", answer).group(1)
    p99: dict[str, list[float]] = {}
    real = [
        r
        for r in records
        if r["transport"] != "inprocess"
        and r["status"] == "ok"
        and r["events_lost"] == 0
        and r["events_failed"] == 0
        and r["throughput_eps"] >= 0.95 * r["target_eps"]
        and r["codec"] == serialization
    ]
    for r in real:
        label = r["transport"] + (
            "[" + ",".join(f"{k}={v}" for k, v in sorted(r["transport_options"].items())) + "]"
            if r["transport_options"]
            else ""
        )
        p99.setdefault(label, []).append((r["batch"], r["latency_ms"]["e2e_received"]["p99"]))
    medians = {k: statistics.median(v for b, v in rows if b == min(b for b, _ in rows)) for k, rows in p99.items()}
    best = min(medians, key=lambda k: (medians[k], k))
    assert re.search(rf"Protocol:\s*{re.escape(best)}\s*\.", answer), (best, medians, answer[:300])
    assert "Runner-up" in answer


def test_report_command(small_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (small_run / "report.html").unlink()
    assert main(["report", str(small_run)]) == 0
    assert (small_run / "report.html").is_file()
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no results.jsonl" in capsys.readouterr().err
    assert main(["report", str(small_run), "--benchmarks", str(tmp_path / "missing.json")]) == 2
    assert "--benchmarks" in capsys.readouterr().err


def test_report_on_a_folder_with_only_failed_cells_says_so(tmp_path: Path) -> None:
    from iotbench.report import write_report

    record = {
        "cell": "json/inprocess/b1/none/c1/d10@1s",
        "codec": "json",
        "transport": "inprocess",
        "transport_options": {},
        "batch": 1,
        "compression": "none",
        "connections": 1,
        "devices": 10,
        "interval_s": 1.0,
        "duration_s": 1.0,
        "warmup_s": 0.0,
        "repeat": 0,
        "target_eps": 10.0,
        "status": "failed",
        "error": "inprocess: server start did not finish",
        "events_scheduled": 0,
        "events_sent": 0,
        "events_acked": 0,
        "events_failed": 0,
        "events_stored": 0,
        "events_lost": 0,
        "events_duplicated": 0,
        "events_rejected": 0,
        "events_unexpected": 0,
        "sends": 0,
        "throughput_eps": 0.0,
        "latency_ms": {},
        "payload_bytes": {"mean": None, "min": None, "max": None},
        "send_bytes": {"mean": None, "min": None, "max": None},
        "cold_store": "cells/x/cold-store",
        "dead_letter": None,
        "started_at": "2026-01-01T00:00:00+00:00",
        "elapsed_s": 1.0,
        "schema_version": 1,
    }
    (tmp_path / "results.jsonl").write_text(json.dumps(record) + "\n")
    text = write_report(tmp_path).read_text()
    assert "No cell qualified" in text
    assert "server start did not finish" in text
    assert "not decided from this run" in text
