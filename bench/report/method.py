"""Method and environment, and the raw data: how the numbers were made and where they are."""

from __future__ import annotations

import json
from typing import Any

from iotbench.report.page import escape, note, table
from iotbench.stats import RESAMPLES, TEST, median_interval

__all__ = ["method_section", "raw_section"]

CAVEATS = [
    "Every server ran on loopback on the same machine as the devices and the consumer: no internet "
    "latency, loss or bandwidth limit. Latencies here are lower bounds of what a device on a cellular link sees.",
    "Clients, servers and the consumer share the machine's cores, so a heavy server slows the client that "
    "measures it; compare protocols with that in mind, and see FACTS.md's direct-client yardsticks.",
    "Devices are simulated in one process (open loop: intended send times, so a slow send shows as send "
    "delay rather than hiding it). Real devices pay their own TLS and radio wake-up costs.",
    "Local stand-ins replace Azure where the cloud cannot run here; Azure's throttling and quotas are quoted "
    "from its documentation, not measured, unless a cell ran against the real service.",
]


def method_section(df: Any, run: dict[str, Any]) -> str:
    parts = []
    machine = run.get("machine") or {}
    if machine:
        parts.append("<h3>Machine</h3>" + table(_pairs(machine)))
    else:
        parts.append(note("run.json is missing: machine and library versions unknown."))
    libs = run.get("libraries") or {}
    if libs:
        parts.append("<h3>Library versions</h3>" + table(_pairs(libs)))
    parts.append("<h3>Repeats, 95% intervals and significance</h3>")
    parts.append(_intervals(df))
    parts.append("<h3>Caveats</h3><ul>" + "".join(f"<li>{escape(c)}</li>" for c in CAVEATS) + "</ul>")
    parts.append("<h3>How the decision is made</h3>")
    from iotbench.report import decision

    parts.append(f"<pre>{escape((decision.__doc__ or '').strip())}</pre>")
    source = run.get("spec_source")
    spec = run.get("spec")
    parts.append("<h3>The spec as run</h3>")
    if source:
        parts.append(f"<pre>{escape(source)}</pre>")
    if spec:
        parts.append(
            f"<details><summary>Parsed spec</summary><pre>{escape(json.dumps(spec, indent=1))}</pre></details>"
        )
    return "\n".join(parts)


def _pairs(mapping: dict[str, Any]) -> Any:
    import pandas as pd

    return pd.DataFrame([(k, str(v)) for k, v in mapping.items()], columns=["", "value"])


def _intervals(df: Any) -> str:
    import pandas as pd

    if df.empty:
        return note("No cell runs.")
    ran = df[df["status"] == "ok"]
    rows = []
    for cell, g in ran.groupby("cell", sort=True):
        row: dict[str, Any] = {"cell": cell, "runs": len(g)}
        for label, col in (("stored/s", "throughput_eps"), ("e2e p99 ms", "latency_e2e_received_p99_ms")):
            interval = median_interval(list(g[col]))
            row[f"{label} median"] = g[col].median()
            row[f"{label} 95% interval"] = f"{interval.low:,.2f} .. {interval.high:,.2f}" if interval else "-"
        rows.append(row)
    text = (
        "<p>Each figure is the median of a configuration's repeats; its 95% interval is a percentile "
        f"bootstrap of the median ({RESAMPLES:,} resamples, fixed seed: the same on every rendering). A "
        "bootstrap median stays within the repeats, so with 5 repeats the interval spans the smallest to "
        "the largest (94% coverage whatever the noise), and with fewer it is narrower than 95% in truth. "
        "A dash means a single run. Byte counts are exact and need no interval.</p>"
        f"<p>Two configurations differ significantly when a {escape(TEST)} gives p below 5% "
        "(<code>scipy.stats.mannwhitneyu</code>; exact over every split of the repeats up to 7 and 7): ranks "
        "need no normal noise, and one disturbed repeat moves them by one place. It takes 4 repeats of each to "
        "reach 5% at all; with fewer the decision says 'too few repeats to tell'. <code>iotbench.compare</code> "
        "gives p, the difference of the medians with its own interval and their ratio for any two cells.</p>"
    )
    most = int(ran.groupby("cell")["repeat"].count().max()) if not ran.empty else 0
    if most <= 1:
        text += note("A single run per configuration: no intervals. Set <code>repeats = 5</code> in the spec.")
    elif most < 5:
        text += note(
            f"At most {most} repeats per configuration: the intervals understate the noise"
            + (" and no difference can be called significant" if most < 4 else "")
            + ". Set <code>repeats = 5</code> in the spec."
        )
    return text + table(pd.DataFrame(rows), digits=2)


def raw_section(csv_name: str) -> str:
    return (
        "<p>Every figure in this report comes from these files, next to it in the results folder:</p><ul>"
        '<li><a href="results.jsonl">results.jsonl</a>: one JSON object per cell run (schema in '
        "docs/results.md)</li>"
        f'<li><a href="{escape(csv_name)}">{escape(csv_name)}</a>: the same, flattened '
        "(<code>iotbench.load_results</code>)</li>"
        '<li><a href="run.json">run.json</a>: the spec as run, the machine, library versions</li></ul>'
        "<p>Each number in the decision carries its recipe (hover it, or read the "
        "<code>data-recipe</code> attribute): metric, rows (cell and repeat) and aggregate.</p>"
    )
