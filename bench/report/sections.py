"""The report's measurement sections: codecs, transports, the full-path matrix.

Each function takes the ``load_results`` frame and returns HTML. Every section
works with whatever codecs, transports and options the folder holds, and says
in words what it lacks rather than drawing an empty chart.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from iotbench.report import charts
from iotbench.report.decision import REFERENCE_TRANSPORTS, eligible
from iotbench.report.page import escape, note, table
from iotbench.studies.evolution import evolution_table

__all__ = ["codecs_section", "matrix_section", "transports_section"]

FRAMING_FACTS = [
    ("AMQP 1.0 transfer", "~53 B frame + 5 B data section; ~10 B per event inside a batch"),
    ("MQTT 3.1.1 QoS 1", "2 B fixed header + 2 B topic length + topic + 2 B packet id; PUBACK 4 B"),
    ("HTTPS to Event Hubs", "~374 B request headers (SAS token) + ~216 B response headers"),
    ("TLS record", "22 B (TLS 1.3) / 29 B (TLS 1.2 AES-GCM) per record"),
    ("TLS full handshake", "1.2-2.5 KB (one self-signed cert), ~6.5 KB with a real chain; ~330 B resumed"),
    ("TCP/IP", "40-52 B per segment; connect 3 packets, close 4"),
]


COUNTS = ("events_lost", "events_duplicated", "events_failed", "events_failed_stored", "events_rejected")


def _median_table(df: Any, keys: list[str], metrics: dict[str, str]) -> Any:
    """Medians over repeats; event counts (lost, duplicated, ...) are totals, so one loss is never hidden."""
    present = {name: col for name, col in metrics.items() if col in df.columns}
    grouped = df.groupby(keys, sort=True)
    out = grouped.size().rename("runs").to_frame()
    for name, col in present.items():
        out[name] = grouped[col].sum().astype(int) if col in COUNTS else grouped[col].median()
    return out.reset_index()


def _extra_columns(df: Any, words: tuple[str, ...]) -> dict[str, str]:
    """Numeric columns other engineers add to the record (cpu..., wire...), shown as they come."""
    return {c: c for c in df.columns if any(w in c for w in words) and df[c].dtype.kind in "fi"}


def codecs_section(df: Any, benchmarks: Path | None) -> str:
    parts = [
        "<p>Bytes per reading as sent (encoded, then compressed when the cell compresses), by "
        "serialization and batch size, medians over every cell that ran. Sizes do not depend on the "
        "transport.</p>"
    ]
    ran = df[df["status"] == "ok"] if not df.empty else df
    if ran.empty or "payload_bytes_mean" not in ran:
        parts.append(note("No cell ran: no payload sizes."))
    else:
        sizes = _median_table(
            ran,
            ["serialization", "batch"],
            {
                "bytes/reading": "payload_bytes_mean",
                "min": "payload_bytes_min",
                "max": "payload_bytes_max",
                "bytes/send": "send_bytes_mean",
                "readings/send": "events_per_send",
            },
        )
        parts.append(table(sizes))
        pivot = ran.pivot_table(index="serialization", columns="batch", values="payload_bytes_mean", aggfunc="median")
        pivot.columns = [f"batch {c}" for c in pivot.columns]
        parts.append(charts.bars(pivot, "Bytes per reading", "bytes", "bytes per reading by serialization and batch"))
        if ran["compression"].nunique() == 1:
            parts.append(
                note(
                    f"Every cell used compression {escape(ran['compression'].iloc[0])}: add "
                    '<code>compression = ["none", "zstd"]</code> to the spec to compare.'
                )
            )
    parts.append("<h3>Single, batched and compressed</h3>")
    parts.append(_sizes(sorted(df["codec"].dropna().unique()) if not df.empty else []))
    parts.append("<h3>Encode and decode CPU (pytest-benchmark)</h3>")
    parts.append(_benchmarks(benchmarks))
    parts.append("<h3>Schema evolution</h3>")
    parts.append(_evolution())
    return "\n".join(parts)


def _sizes(codecs: list[str]) -> str:
    """Bytes per reading of each codec in the run, on the codec table's fixed sample (zstd-3)."""
    import pandas as pd

    try:
        from iotbench.codecs import get_codec
        from iotbench.studies.codec_table import payload_sizes
        from iotbench.studies.samples import BATCH, sample_readings
    except ImportError:
        return note("The codec size table (<code>iotbench.studies.codec_table</code>) is not available here.")
    rows = []
    readings = sample_readings(1000)
    for name in codecs:
        try:
            sizes = payload_sizes(get_codec(name), readings, "zstd")
        except Exception as exc:  # noqa: BLE001 - one codec that cannot load must not hide the others
            rows.append({"codec": name, "single": float("nan"), "note": str(exc)[:120]})
            continue
        rows.append(
            {
                "codec": name,
                "single": sizes["bytes_single"],
                f"batch of {BATCH}": sizes["bytes_per_event_batch"],
                "single, zstd": sizes["compressed_bytes_single"],
                f"batch of {BATCH}, zstd": sizes["compressed_bytes_per_event_batch"],
            }
        )
    if not rows:
        return note("No codec in this run.")
    return (
        "<p>Bytes per reading on the same 1,000 readings from the seeded generator (one minute of "
        "1,000 devices; a batch holds one minute's readings of 100 devices, as a gateway batches), "
        "so codecs compare on identical data. Compressing one small binary reading makes it bigger (frame headers).</p>"
        + table(pd.DataFrame(rows))
    )


def _benchmarks(path: Path | None) -> str:
    if path is None:
        return note(
            "No benchmark file given: run <code>pytest tests/benchmarks --benchmark-only "
            "--benchmark-json FILE</code>, then <code>iotbench report DIR --benchmarks FILE</code>."
        )
    from iotbench.report.benchmarks import load_benchmarks

    try:
        frame = load_benchmarks(path)
    except ValueError as exc:
        return note(escape(exc))
    if frame.empty:
        return note(f"{escape(path)} holds no benchmarks.")
    out = [f"<p>From <code>{escape(Path(path).name)}</code> ({len(frame)} benchmarks).</p>"]
    if {"codec", "op", "framing", "median_us_per_event"} <= set(frame.columns):
        out.append(_codec_benchmarks(frame[frame["codec"].notna()]))
    else:
        top = frame.set_index("benchmark")["median_us"].head(40).to_frame("median µs")
        out.append(charts.bars(top, "pytest-benchmark medians", "µs per call", "benchmark medians"))
    out.append(
        "<details><summary>Every benchmark: median and mean µs per call, then the suite's "
        f"<code>extra_info</code></summary>{table(frame, digits=2)}</details>"
    )
    return "\n".join(out)


def _codec_benchmarks(frame: Any) -> str:
    """The codec suite's shape (extra_info codec/op/framing/compression): µs per reading and sizes per codec."""
    plain = frame[frame["compression"].fillna("none") == "none"] if "compression" in frame.columns else frame
    speed = plain.pivot_table(index="codec", columns=["op", "framing"], values="median_us_per_event", aggfunc="median")
    speed.columns = [f"{op} {framing} µs/reading" for op, framing in speed.columns]
    parts = [
        "<p>Median microseconds per reading (a batch call divided by its readings), no compression; "
        "bytes per reading from the same suite.</p>"
    ]
    sizes = [c for c in ("bytes_single", "bytes_per_event_batch") if c in frame.columns]
    joined = speed
    if sizes:
        joined = frame.groupby("codec")[sizes].first().join(speed, how="outer")
    if "library" in frame.columns:
        joined = frame.groupby("codec")[["library"]].first().join(joined, how="outer")
    parts.append(table(joined.reset_index(), digits=2))
    if {"compression", "compressed_bytes_per_event_batch"} <= set(frame.columns):
        comp = frame.pivot_table(
            index="codec", columns="compression", values="compressed_bytes_per_event_batch", aggfunc="first"
        )
        comp.columns = [f"batch, {c}: bytes/reading" for c in comp.columns]
        parts.append(table(comp.reset_index(), digits=1))
    chart_cols = [c for c in speed.columns if "single" in c]
    if chart_cols:
        parts.append(
            charts.bars(
                speed[chart_cols],
                "Encode and decode, one reading",
                "µs per reading",
                "encode and decode microseconds per reading",
            )
        )
    return "\n".join(parts)


def _evolution() -> str:
    """The codec suite's schema-evolution table (``iotbench.studies.evolution``)."""
    import pandas as pd

    try:
        frame = pd.DataFrame([asdict(row) for row in evolution_table()])
    except Exception as exc:  # noqa: BLE001 - a broken codec plugin must not take the report down
        return note(f"The schema-evolution table could not be made: {escape(exc)}")
    return _evolution_html(frame.astype(str))


def _evolution_html(frame: Any) -> str:
    """Outcome per codec and direction (x framing) up front; the full rows with their reasons folded."""
    intro = (
        "<p>Version 2 of the reading adds a field with a default and removes one. Can a v2 reader "
        "read v1 data, and a v1 reader v2 data? (<code>ok</code>: read, shared fields exact; "
        "<code>error</code>: refused loudly; <code>invented</code>/<code>wrong</code>: read, but wrong.)</p>"
    )
    if {"codec", "direction", "outcome"} <= set(frame.columns):
        columns = ["direction", "framing"] if "framing" in frame.columns else ["direction"]
        pivot = frame.pivot_table(index="codec", columns=columns, values="outcome", aggfunc="first")
        pivot.columns = [" / ".join(c) if isinstance(c, tuple) else str(c) for c in pivot.columns]
        summary = table(pivot.reset_index())
    else:
        summary = ""
    return intro + summary + f"<details><summary>Every row, with the reason</summary>{table(frame)}</details>"


def transports_section(df: Any, timeseries: Any = None) -> str:
    if df.empty:
        return note("No cell runs.")
    parts = [
        "<p>Medians over repeats per transport variant, serialization and batch. "
        "<code>inprocess</code> is the reference transport (a queue in the same process): "
        "it shows what the harness itself costs.</p>"
    ]
    metrics = {
        "stored/s": "throughput_eps",
        "offered/s": "target_eps",
        "kept up": "sustained",
        "lost (all runs)": "events_lost",
        "dup": "events_duplicated",
        "failed": "events_failed",
        "failed, yet stored": "events_failed_stored",
        "e2e p50 ms": "latency_e2e_received_p50_ms",
        "e2e p90 ms": "latency_e2e_received_p90_ms",
        "e2e p99 ms": "latency_e2e_received_p99_ms",
        "e2e p99.9 ms": "latency_e2e_received_p999_ms",
        "publish p99 ms": "latency_publish_p99_ms",
        "send delay p99 ms": "latency_send_delay_p99_ms",
        "bytes/send": "send_bytes_mean",
    }
    metrics.update(_extra_columns(df, ("cpu", "wire", "transport_counters")))
    parts.append(table(_median_table(df, ["variant", "serialization", "batch"], metrics), digits=2))
    ok = eligible(df)
    if not ok.empty:
        smallest = ok[ok["batch"] == ok["batch"].min()]
        cols = {
            "p50": "latency_e2e_received_p50_ms",
            "p90": "latency_e2e_received_p90_ms",
            "p99": "latency_e2e_received_p99_ms",
            "p99.9": "latency_e2e_received_p999_ms",
        }
        frame = smallest.groupby(["variant", "serialization"])[list(cols.values())].median()
        frame.columns = list(cols)
        frame.index = [f"{v} / {s}" for v, s in frame.index]
        frame = frame.dropna()
        if not frame.empty:
            parts.append(
                charts.percentiles(
                    frame,
                    f"End-to-end latency, batch {int(smallest['batch'].min())}",
                    "end-to-end latency percentiles per transport",
                )
            )
    parts.append("<h3>Second by second</h3>")
    parts.append(_seconds(df, timeseries))
    parts.append("<h3>Wire bytes per reading, by layer</h3>")
    parts.append(_wire(df))
    parts.append("<h3>CPU and memory per reading</h3>")
    parts.append(_cpu(df))
    parts.append("<h3>Connection model</h3>")
    conns = df.groupby(["variant"], sort=True).agg(connections=("connections", "max"), devices=("devices", "max"))
    conns["devices per connection"] = conns["devices"] / conns["connections"]
    parts.append(table(conns.reset_index(), digits=0))
    parts.append(
        "<p>Azure Event Hubs Standard allows 5,000 AMQP connections per namespace (100 on Basic) and "
        "charges for them; HTTPS sends have no connection limit or charge but pay headers on every "
        "request. A gateway that multiplexes devices onto few connections is the usual answer for "
        "100,000 devices.</p>"
    )
    real = df[~df["transport"].isin(REFERENCE_TRANSPORTS)]
    if real.empty:
        parts.append(note("Only the in-process reference ran: no real protocol in this folder."))
    return "\n".join(parts)


def _wire(df: Any) -> str:
    from iotbench.model.cost import Scenario
    from iotbench.report.wire import wire_table

    frame = wire_table(df, Scenario().events_per_device_month)
    text = (
        "<p><strong>Measured</strong> on the sending side's connections, from the kernel's TCP counters "
        "(<code>TCP_INFO</code>) over the measured window, per reading sent: the codec's payload, the "
        "protocol's framing each way (headers, acknowledgements; TLS records in a TLS cell), TCP/IP headers "
        "each way (loopback's: one segment can carry 64 KB, where a 1,500 B link needs several), and the "
        "connections' set-up and tear-down spread over every reading the cell sent. <em>Of which TLS</em> is "
        "a TLS cell's framing minus the same configuration's without TLS, when the run holds both. "
        "MB/device/month is the total at one reading a minute.</p>"
    )
    if frame.empty:
        text += note(
            "No cell in this run measured wire bytes (the in-process reference and UDP have no TCP connection)."
        )
    else:
        text += table(frame, digits=1)
    return (
        text + "<details><summary>Per-message framing from the protocols' specifications (FACTS.md), to read "
        "the measurement against</summary>"
        + table(_facts_frame(FRAMING_FACTS, ["layer", "overhead per message"]))
        + "</details>"
    )


def _seconds(df: Any, ts: Any) -> str:
    """Stored readings and send delay p99 per second: every variant at the smallest batch, one
    serialization, the first repeat (the results' ``timeseries``; ``iotbench.load_timeseries`` has all)."""
    if ts is None or ts.empty:
        return note("These results carry no time series (written before issue 11).")
    ran = df[(df["status"] == "ok") & df["cell"].isin(set(ts["cell"]))]
    if ran.empty:
        return note("No cell that ran has a time series.")
    ran = ran[(ran["batch"] == ran["batch"].min()) & (ran["repeat"] == 0)]
    ran = ran[ran["serialization"] == sorted(ran["serialization"].unique())[0]]
    names = dict(zip(ran["cell"], ran["variant"]))
    picked = ts[ts["cell"].isin(names) & (ts["repeat"] == 0)]
    window = picked[picked["in_window"]]["t_s"]
    if window.empty:
        return note("No bin of the measured window.")
    span = (float(window.min()), float(window.max()) + float(picked["bin_s"].max()))
    label = f"batch {int(ran['batch'].min())}, {escape(str(ran['serialization'].iloc[0]))}"

    def lines(metric: str) -> Any:
        frame = picked[picked["metric"] == metric].pivot_table("value", "t_s", "cell", dropna=False)
        return frame.rename(columns=names).sort_index(axis=1)

    text = (
        f"<p>Each variant at {label}, its first repeat: readings stored per second (by arrival) and the "
        "send delay p99 of the readings due in each second; the measured window is shaded. A stall, a "
        "backlog or a slow start shows here where the cell's medians hide it.</p>"
    )
    per_bin = float(picked["bin_s"].max())
    stored = lines("stored") / per_bin
    text += charts.series(stored, f"Stored readings per second, {label}", "readings/s", "stored per second", span)
    delay = lines("send_delay_p99_ms")
    if not delay.dropna(how="all").empty:
        text += charts.series(delay, f"Send delay p99 per second, {label}", "ms (log)", "send delay p99 per second",
                              span, log=True)  # fmt: skip
    return text


def _cpu(df: Any) -> str:
    cols = {
        "client us/reading": "cpu_us_per_event_client",
        "server us/reading": "cpu_us_per_event_server",
        "consumer us/reading": "cpu_us_per_event_consumer",
        "client peak MB": "peak_rss_mb_client",
        "server peak MB": "peak_rss_mb_server",
        "consumer peak MB": "peak_rss_mb_consumer",
    }
    ran = df[df["status"] == "ok"] if "status" in df else df
    if "cpu_us_per_event_client" not in ran.columns or ran["cpu_us_per_event_client"].isna().all():
        return note("These results carry no CPU readings (written before issue 11).")
    text = (
        "<p>CPU time per reading over the measured window, from each process's own accounting: the "
        "sending processes (<em>client</em>: fleet, codec, the client library), the servers the cell "
        "started (<em>server</em>, with every process they started) per reading sent, and the receiving "
        "process (<em>consumer</em>: decode, validate, cold store) per reading received; peak resident memory "
        "of each. The harness's own share is in the client and consumer figures: the in-process reference "
        "shows its size.</p>"
    )
    return text + table(_median_table(ran, ["variant", "serialization", "batch"], cols), digits=1)


def _facts_frame(rows: list[tuple[str, str]], columns: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def matrix_section(df: Any) -> str:
    ran = df[df["status"] == "ok"] if not df.empty else df
    if ran.empty:
        return note("No cell ran: no matrix.")
    parts = [
        "<p>Serialization x transport variant, medians over repeats; one row of heatmaps per batch "
        "size. A dash is a combination that was not run (or failed).</p>"
    ]
    for batch, rows in ran.groupby("batch", sort=True):
        pivots = []
        for name, col, fmt in (
            ("stored events/s", "throughput_eps", ".0f"),
            ("e2e p99 ms", "latency_e2e_received_p99_ms", ".3g"),
            ("bytes/reading", "payload_bytes_mean", ".1f"),
        ):
            pivot = rows.pivot_table(index="serialization", columns="variant", values=col, aggfunc="median")
            if not pivot.empty:
                pivots.append((name, pivot, fmt))
        if pivots:
            parts.append(f"<h3>Batch {int(batch)}</h3>")
            parts.append(charts.heatmaps(pivots, f"batch {int(batch)}", f"codec x transport heatmaps, batch {batch}"))
    if ran["variant"].nunique() < 2 or ran["serialization"].nunique() < 2:
        parts.append(
            note("The matrix has a single row or column here: run more codecs and transports for a comparison.")
        )
    return "\n".join(parts)
