"""The results API: a results folder as one flat pandas table, one row per cell run.

The report, the notebooks and users' own scripts all read results through
``load_results``, so a column means the same thing everywhere. The columns are
documented in ``RESULT_COLUMNS`` (and in docs/results.md); nested objects of the
record are flattened with their path in the name, so a key another engineer adds
to the record later (a dict of numbers) shows up as columns without a change here.

>>> df = load_results("reports/run-20260101-120000")          # doctest: +SKIP
>>> df.groupby("codec")["payload_bytes_mean"].median()        # doctest: +SKIP

Repeats (``repeats = N`` in the spec) give each figure a median and a 95 % interval, and two
configurations a verdict (``iotbench.stats`` says which interval and which test, and why):

>>> intervals(df, "latency_publish_p50_ms")                  # doctest: +SKIP
>>> compare(df, a="json/mqtt[qos=0]/b1/none/c1/d1000@1s", b={"variant": "mqtt[qos=1]", "codec": "json"},
...         metric="latency_ms.publish.p50")                 # doctest: +SKIP
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from iotbench.model.results import SCHEMA_VERSION
from iotbench.model.sustain import shortfall
from iotbench.stats import ALPHA, Comparison, compare_repeats, median_interval

__all__ = [
    "RESULT_COLUMNS",
    "compare",
    "intervals",
    "load_results",
    "load_run",
    "load_timeseries",
    "metric_column",
    "variant_label",
]

LATENCY_KINDS = ("send_delay", "publish", "publish_failed", "e2e_received", "e2e_stored")
PERCENTILES = ("p50", "p90", "p99", "p999", "max")

RESULT_COLUMNS: dict[str, str] = {
    "cell": "the cell's id: codec/transport[options]/batch/compression/connections/devices@interval "
    "(the same for every repeat of a configuration)",
    "repeat": "0-based repeat of the cell",
    "codec": "codec registry name, e.g. 'msgpack'",
    "compression": "compression of each send: none, gzip, zstd, lz4",
    "serialization": "codec plus compression, e.g. 'msgpack' or 'msgpack+zstd'",
    "transport": "transport registry name, e.g. 'mqtt'",
    "transport_options": "the transport's options as compact JSON text ('{}' when none)",
    "variant": "transport plus its options, readable: 'mqtt[qos=1]' ('mqtt' when none)",
    "option_<name>": "one column per transport option seen in the folder (NaN for other transports)",
    "batch": "events per send (at most; a send also goes when linger_ms passes)",
    "connections": "sender connections the devices are spread over",
    "devices": "simulated devices",
    "interval_s": "seconds between a device's readings",
    "target_eps": "offered rate: devices / interval_s, events per second",
    "duration_s": "measured window, seconds (after warmup_s)",
    "warmup_s": "warm-up before the measured window, seconds",
    "status": "'ok', or 'failed' with `error` saying why",
    "error": "why the cell failed (None when ok)",
    **{
        f"events_{k}": v
        for k, v in {
            "scheduled": "readings the fleet's schedule held for the cell (warm-up included)",
            "sent": "readings handed to a sender",
            "acked": "readings whose send was acknowledged",
            "failed": "readings whose send raised or timed out (kept in the dead-letter file)",
            "failed_stored": "of events_failed, stored all the same: the send's acknowledgement, not the "
            "reading, was lost (a retry would have made a duplicate)",
            "stored": "distinct (device, seq) readings the cold store holds",
            "lost": "sent, never stored (exact per-(device, seq) accounting, iotbench.pipeline.accounting)",
            "duplicated": "copies stored beyond the first",
            "rejected": "failed decode or validation (dead-lettered)",
            "unexpected": "stored but never sent",
            "late": "stored only after the drain gave up waiting: not lost, but not in time either",
        }.items()
    },
    "run_id": "the run's id, the prefix of its device ids (unique per run)",
    "sends": "payloads sent (one event or one batch each)",
    "events_per_send": "events_sent / sends",
    "throughput_eps": "distinct readings meant to be sent in the measured window and stored, per second of the window",
    "sustained": "throughput_eps / target_eps (1.0 = stored as many as offered)",
    "kept_up": "the one rule of iotbench.model.sustain: ran, stored >= 95 % of offered, nothing lost or late, "
    "send delay p99 within bound",
    "shortfall": "why the cell did not keep up, in words (None when it did)",
    **{
        f"latency_{kind}_{pct}_ms": f"{kind} latency, {pct}, milliseconds (from the cell's HdrHistogram)"
        for kind in LATENCY_KINDS
        for pct in PERCENTILES
    },
    **{
        f"{group}_{stat}": f"{stat} {what}"
        for group, what in (
            ("payload_bytes", "encoded (and compressed) bytes per event"),
            ("send_bytes", "bytes per send (one payload)"),
        )
        for stat in ("mean", "min", "max")
    },
    **{
        f"wire_{direction}_{layer}": f"measured bytes per reading sent in the window, {way}, {layer} "
        "(the sending side's TCP connections, kernel counters; NaN without a TCP connection)"
        for direction, way, layers in (
            ("up", "device -> server", ("payload", "framing", "tcp_ip", "total", "segments")),
            ("down", "server -> device", ("framing", "tcp_ip", "total", "segments")),
        )
        for layer in layers
    },
    "wire_events": "readings sent in the measured window: the denominator of the wire_up_*/wire_down_* columns",
    "wire_connections": "the sending side's TCP connections counted in the window "
    "(0: UDP, from the server's datagram counts)",
    "wire_retransmitted_bytes": "of the bytes device -> server in the window, retransmitted (NaN for UDP)",
    **{
        f"wire_{phase}_{what}": f"connection {phase}: {text}"
        for phase in ("setup", "teardown")
        for what, text in (
            ("connections", "connections counted"),
            ("up_bytes", "bytes device -> server per connection, TCP/IP headers included"),
            ("down_bytes", "bytes server -> device per connection, TCP/IP headers included"),
            ("per_event", "both directions' bytes spread over every reading the cell sent"),
        )
    },
    **{
        f"cpu_us_per_event_{side}": f"CPU microseconds per reading in the measured window, {what}"
        for side, what in (
            ("client", "the sending processes (per reading sent)"),
            ("server", "the servers the cell started, with their children (per reading sent)"),
            ("consumer", "the receiving process (per reading received)"),
        )
    },
    **{
        f"peak_rss_mb_{side}": f"peak resident memory of the {side} side, MB"
        for side in ("client", "server", "consumer")
    },
    "<key>_<sub>": "any other object of numbers in the record, flattened the same way "
    "(e.g. transport_counters_retries)",
    "search_id": "a rate search's trial (spec rate = 'max'): the searched cell's number in the run (NaN: not a search)",
    "search_step": "a rate search's trial: 1, 2, ... in the order run (NaN: not a search)",
    "search_outcome_sustained_eps": "on a search's last trial: the highest offered rate kept up "
    "(NaN: none, or not the last)",
    "search_outcome_not_sustained_eps": "on a search's last trial: the lowest rate above it that was not kept up "
    "(NaN: the top was kept up, or not the last)",
    "search_outcome_trials": "on a search's last trial: the trials the search ran (NaN on the others)",
    "dead_letter": "the cell's dead-letter file, relative to the results folder (None when nothing failed)",
    "cold_store": "the cell's cold-store folder, relative to the results folder",
    "cold_store_bytes": "bytes of the cell's published cold-store files on disk (NaN when gone)",
    "cold_store_bytes_per_event": "cold_store_bytes / events_stored",
    "started_at": "when the cell started (UTC, ISO 8601)",
    "elapsed_s": "wall time of the whole cell, set-up and drain included",
    "schema_version": "version of the record (iotbench.model.results.SCHEMA_VERSION)",
}

_FIXED = [c for c in RESULT_COLUMNS if c.startswith(("wire_", "cpu_us_per_event_", "peak_rss_mb_"))]
_DROP = {
    "histograms",
    "error_samples",
    "latency_ms",
    "payload_bytes",
    "send_bytes",
    "transport_options",
    "search",
    "timeseries",
}


def variant_label(transport: str, options: dict[str, Any] | None) -> str:
    """``variant_label('mqtt', {'qos': 1, 'tls': True}) == 'mqtt[qos=1,tls=true]'`` (keys sorted)."""
    if not options:
        return transport
    parts = ",".join(f"{k}={_option_text(options[k])}" for k in sorted(options))
    return f"{transport}[{parts}]"


def _option_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (bool, type(None))) else str(value)


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _flatten(f"{prefix}_{key}", sub, out)
    elif isinstance(value, (int, float)) or value is None:
        out[prefix] = value


def _row(record: dict[str, Any], folder: Path) -> dict[str, Any]:
    row: dict[str, Any] = {k: v for k, v in record.items() if k not in _DROP and not isinstance(v, (dict, list))}
    options = record.get("transport_options") or {}
    row["transport_options"] = json.dumps(options, sort_keys=True, separators=(",", ":"))
    row["variant"] = variant_label(record.get("transport", "?"), options)
    for key, value in options.items():
        row[f"option_{key}"] = value
    compression = record.get("compression", "none")
    row["serialization"] = record.get("codec", "?") + ("" if compression in ("none", None) else f"+{compression}")
    for kind in LATENCY_KINDS:
        summary = (record.get("latency_ms") or {}).get(kind) or {}
        for pct in PERCENTILES:
            row[f"latency_{kind}_{pct}_ms"] = summary.get(pct)
    for group in ("payload_bytes", "send_bytes"):
        for stat in ("mean", "min", "max"):
            row[f"{group}_{stat}"] = (record.get(group) or {}).get(stat)
    search = record.get("search") or {}  # the same columns for every row: NaN where not a search
    outcome = search.get("outcome") or {}
    row["search_id"], row["search_step"] = search.get("id"), search.get("step")
    for key in ("sustained_eps", "not_sustained_eps", "trials"):
        row[f"search_outcome_{key}"] = outcome.get(key)
    row.pop("wire", None)  # None: no TCP connection; its columns stay NaN
    for column in _FIXED:  # the same columns for every row: NaN where not measured (older records, no TCP)
        row[column] = None
    for key, value in record.items():
        if key not in _DROP and isinstance(value, dict):
            _flatten(key, value, row)  # keys added to the record later
    sends, sent = record.get("sends") or 0, record.get("events_sent") or 0
    row["events_per_send"] = sent / sends if sends else None
    target = record.get("target_eps") or 0
    row["sustained"] = record.get("throughput_eps", 0) / target if target else None
    row["shortfall"] = shortfall(record)
    row["kept_up"] = row["shortfall"] is None
    row["cold_store_bytes"] = _folder_bytes(folder / record["cold_store"]) if record.get("cold_store") else None
    stored = record.get("events_stored") or 0
    row["cold_store_bytes_per_event"] = row["cold_store_bytes"] / stored if row["cold_store_bytes"] and stored else None
    return row


def _folder_bytes(folder: Path) -> int | None:
    """Published files only (``part-*``): temp files of a crashed cell are not data at rest."""
    if not folder.is_dir():
        return None
    return sum(p.stat().st_size for p in folder.glob("part-*") if p.is_file())


def _records(path: Path) -> list[dict[str, Any]]:
    records = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{path}:{number}: not a JSON object ({exc.msg}); "
                    "the run was cut off mid-line? delete that line and load again"
                ) from None
    return records


def _results_path(folder: str | Path) -> Path:
    folder = Path(folder)
    path = folder / "results.jsonl" if folder.is_dir() else folder
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no results here; give the folder `iotbench run --out DIR` wrote")
    return path


def load_results(folder: str | Path) -> Any:
    """One row per cell run of ``folder/results.jsonl``, with the columns of ``RESULT_COLUMNS``.

    Rows keep the file's order. A record newer than this iotbench (a higher
    ``schema_version``) is loaded with a warning: versions only add keys.
    """
    import pandas as pd

    path = _results_path(folder)
    records = _records(path)
    newer = {int(r["schema_version"]) for r in records if (r.get("schema_version") or 0) > SCHEMA_VERSION}
    if newer:
        warnings.warn(
            f"{path}: schema_version {sorted(newer)} is newer than {SCHEMA_VERSION}; "
            "upgrade iotbench to read every column",
            stacklevel=2,
        )
    base = path.parent
    frame = pd.DataFrame([_row(r, base) for r in records])
    if frame.empty:
        frame = pd.DataFrame(columns=["cell", "repeat", "codec", "transport", "variant", "status"])
    return frame


def load_run(folder: str | Path) -> dict[str, Any]:
    """``folder/run.json``: the spec as run, the machine and library versions ({} when missing)."""
    path = Path(folder) / "run.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def metric_column(metric: str) -> str:
    """A column of ``load_results`` from a column name or the record's dotted path.

    >>> metric_column("latency_ms.publish.p50"), metric_column("payload_bytes.mean"), metric_column("throughput_eps")
    ('latency_publish_p50_ms', 'payload_bytes_mean', 'throughput_eps')
    """
    parts = metric.split(".")
    if parts[0] == "latency_ms" and len(parts) == 3:
        return f"latency_{parts[1]}_{parts[2]}_ms"
    return "_".join(parts)


def _frame(results: Any) -> Any:
    return load_results(results) if isinstance(results, (str, Path)) else results


def _column(df: Any, metric: str) -> str:
    column = metric_column(metric)
    if column not in df.columns:
        raise KeyError(f"{metric!r}: no such column (tried {column!r}); see iotbench.results_api.RESULT_COLUMNS")
    return column


def _configuration(df: Any, which: str | dict[str, Any], side: str) -> Any:
    """The ran (``status == 'ok'``) repeats of one configuration: a cell id, or columns to match."""
    if isinstance(which, str):
        rows = df[df["cell"] == which]
    else:
        mask = df["cell"].notna()
        for key, value in which.items():
            if key not in df.columns:
                raise KeyError(f"{side}: {key!r} is not a column of the results")
            mask &= df[key] == value
        rows = df[mask]
    cells = sorted(set(rows["cell"]))
    if len(cells) != 1:
        found = (
            "no cell" if not cells else f"{len(cells)} cells ({', '.join(cells[:4])}{' ...' if len(cells) > 4 else ''})"
        )
        raise ValueError(f"{side}={which!r} matches {found}; name one configuration (its `cell` id, or more columns)")
    return rows[rows["status"] == "ok"]


def compare(
    results: Any,
    a: str | dict[str, Any],
    b: str | dict[str, Any],
    metric: str,
    *,
    alpha: float = ALPHA,
    margin: float = 0.0,
) -> Comparison:
    """Configuration ``b`` against ``a`` on ``metric`` over their repeats: medians with 95 % intervals,
    the difference b - a with its interval, the ratio, and whether it is significant.

    ``results`` is a ``load_results`` frame or a results folder; ``a`` and ``b`` are cell ids or
    dicts of columns naming one configuration each (``{"variant": "mqtt[qos=1]", "batch": 1}``);
    ``metric`` a column or the record's dotted path (``"latency_ms.publish.p50"``). Only runs
    with status 'ok' count. ``margin`` (the metric's unit) is the smallest difference that
    matters: one within it is not called significant (see ``iotbench.stats``).

    >>> c = compare(df, a=fast_cell, b=slow_cell, metric="latency_ms.publish.p50")   # doctest: +SKIP
    >>> c.significant, c.direction, c.difference, (c.difference_low, c.difference_high), c.p_value  # doctest: +SKIP
    (True, 'higher', 5.2, (5.1, 5.4), 0.0079)
    """
    df = _frame(results)
    column = _column(df, metric)
    rows_a, rows_b = _configuration(df, a, "a"), _configuration(df, b, "b")
    return compare_repeats(list(rows_a[column]), list(rows_b[column]), alpha=alpha, margin=margin)


def intervals(results: Any, metric: str, by: str | list[str] = "cell") -> Any:
    """Per configuration (``by``: a column or columns), the ran repeats' ``n``, ``median`` and 95 %
    interval ``low`` .. ``high`` of ``metric`` (NaN with a single run), as a DataFrame.

    >>> intervals("reports/run-20260101-120000", "throughput_eps")     # doctest: +SKIP
    """
    import pandas as pd

    df = _frame(results)
    column = _column(df, metric)
    keys = [by] if isinstance(by, str) else list(by)
    out = []
    for key, rows in df[df["status"] == "ok"].groupby(keys, sort=True):
        values = list(rows[column].dropna())
        interval = median_interval(values)
        nan = float("nan")
        out.append(
            {
                **dict(zip(keys, key if isinstance(key, tuple) else (key,))),
                "n": len(values),
                "median": interval.median if interval else (values[0] if values else nan),
                "low": interval.low if interval else nan,
                "high": interval.high if interval else nan,
            }
        )
    return pd.DataFrame(out, columns=[*keys, "n", "median", "low", "high"])


def load_timeseries(folder: str | Path) -> Any:
    """The cells' ``timeseries`` as one long table: a row per (cell, repeat, bin, metric).

    Columns: ``cell``, ``repeat``, ``t_s`` (the bin's start, seconds from the schedule's start),
    ``bin_s``, ``in_window`` (the bin lies in the measured window), ``metric`` (``sent``,
    ``failed``, ``stored``, ``stored_intended``: events in the bin; ``send_delay_p99_ms`` and the
    like: the bin's percentile, NaN when it holds no value) and ``value``. Records without a
    time series (older ones, cells that sent nothing) have no rows.

    >>> ts = load_timeseries("reports/run-20260101-120000")                    # doctest: +SKIP
    >>> ts[ts.metric == "stored"].pivot_table("value", "t_s", "cell")          # doctest: +SKIP
    """
    import pandas as pd

    rows: list[tuple[Any, ...]] = []
    for record in _records(_results_path(folder)):
        ts = record.get("timeseries") or {}
        if not ts:
            continue
        start, end = ts["window"]
        series = {k: v for k, v in ts.items() if isinstance(v, list) and k not in ("t_s", "window")}
        for key, value in ts.items():
            if isinstance(value, dict):  # a latency: {"p50": [...], "p99": [...]}
                base = key.removesuffix("_ms")
                series.update({f"{base}_{pct}_ms": values for pct, values in value.items()})
        for i, t in enumerate(ts["t_s"]):
            for metric, values in series.items():
                rows.append(
                    (record["cell"], record.get("repeat", 0), t, ts["bin_s"], start <= t < end, metric, values[i])
                )
    columns = ["cell", "repeat", "t_s", "bin_s", "in_window", "metric", "value"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["value"] = frame["value"].astype(float)
    return frame
