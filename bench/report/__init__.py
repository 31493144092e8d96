"""``iotbench report DIR``: the decision report, one self-contained HTML file.

>>> from iotbench.report import write_report
>>> write_report(Path("reports/run-20260101-120000"))          # doctest: +SKIP
PosixPath('reports/run-20260101-120000/report.html')

pytest-benchmark JSON goes into the codec section: pass ``benchmarks``, or leave a
``benchmarks.json`` in the results folder and every report of it picks the file up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from iotbench.results_api import load_results, load_run, load_timeseries

__all__ = ["write_report", "render_report", "BENCHMARKS_NAME", "CSV_NAME", "REPORT_NAME"]

REPORT_NAME = "report.html"
CSV_NAME = "results.csv"
BENCHMARKS_NAME = "benchmarks.json"


def render_report(out_dir: Path, benchmarks: Path | None = None) -> str:
    """The report's HTML for the results folder ``out_dir``."""
    from iotbench.report.cost_section import cost_section
    from iotbench.report.decision import decide
    from iotbench.report.decision_html import decision_section
    from iotbench.report.method import method_section, raw_section
    from iotbench.report.page import escape, page
    from iotbench.report.sections import codecs_section, matrix_section, transports_section

    out_dir = Path(out_dir)
    if benchmarks is None and (out_dir / BENCHMARKS_NAME).is_file():
        benchmarks = out_dir / BENCHMARKS_NAME  # dropped next to the results: picked up by the end-of-run report
    df = load_results(out_dir)
    run = load_run(out_dir)
    name = (run.get("spec") or {}).get("name", out_dir.name)
    when = run.get("started_at", "")
    subtitle = (
        f"Run <code>{escape(name)}</code> started {escape(when)}; {len(df)} cell runs; "
        f"report written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Fabrikam: 100,000 devices, "
        "one reading a minute each, into Azure Event Hubs and on to cold storage."
    )
    return page(
        "iotbench: protocol and serialization for IoT telemetry",
        subtitle,
        [
            ("decision", "The decision", _safe(lambda: decision_section(decide(df)))),
            ("codecs", "Codecs", _safe(lambda: codecs_section(df, benchmarks))),
            ("transports", "Transports", _safe(lambda: transports_section(df, load_timeseries(out_dir)))),
            ("matrix", "The full-path matrix", _safe(lambda: matrix_section(df))),
            ("cost", "Cost on Azure", _safe(lambda: cost_section(df, run))),
            ("method", "Method and environment", _safe(lambda: method_section(df, run))),
            ("raw", "Raw data", raw_section(CSV_NAME)),
        ],
    )


def _safe(make: Callable[[], str]) -> str:
    """A section that cannot be drawn says why; the rest of the report (and the run) go on."""
    from iotbench.report.page import escape, note

    try:
        return make()
    except Exception as exc:  # noqa: BLE001 - a report with one broken section beats no report after a long run
        return note(f"This section could not be made: {escape(type(exc).__name__)}: {escape(exc)}")


def write_report(out_dir: Path, benchmarks: Path | None = None) -> Path:
    """Write ``out_dir/report.html`` (and ``out_dir/results.csv``) and return the report's path."""
    out_dir = Path(out_dir)
    text = render_report(out_dir, benchmarks)
    load_results(out_dir).to_csv(out_dir / CSV_NAME, index=False)
    path = out_dir / REPORT_NAME
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
