"""When the answer changes: sleeping devices, gateways, schema upgrades, connection limits, higher rates.

Part of the decision (see ``decision``); every number is a ``Figure`` from the results
or a ``fact`` with its source.
"""

from __future__ import annotations

import math
from typing import Any

from iotbench.model.cost import AMQP_CONNECTIONS_PER_NAMESPACE
from iotbench.report.figures import fact, measure
from iotbench.report.rules import (
    BYTES,
    EH_LIMITS,
    NEW_CONNECTION_VALUES,
    PUBLISH_P99,
    SCENARIO,
    Decision,
    code,
    rank_by,
    smallest_batch,
)

__all__ = ["answer_changes"]


def _compressed(d: Decision, ok: Any) -> None:
    """Behind a gateway that batches and compresses, formats converge: say how far, if measured."""
    squeezed = ok[(ok["compression"] != "none") & (ok["batch"] > 1)]
    squeezed = squeezed[squeezed["batch"] == squeezed["batch"].max()] if not squeezed.empty else squeezed
    ranked = rank_by(squeezed, "serialization", BYTES) if not squeezed.empty else []
    if len(ranked) < 2:
        return
    (low, low_rows), (high, high_rows) = ranked[0], ranked[-1]
    d.changes.append(
        f"Behind a gateway that batches ({measure(low_rows, 'batch', 'max', digits=0)} per send) and compresses, "
        f"the formats converge: from {measure(low_rows, BYTES)} B per reading ({code(low)}) to "
        f"{measure(high_rows, BYTES)} B ({code(high)}); the gap between codecs matters on the device link, "
        "much less after the gateway."
    )


def _evolution(d: Decision) -> None:
    """A fleet upgrades one device at a time: say if the chosen codec breaks on the other schema version."""
    if not d.serialization:
        return
    codec = d.serialization.split("+")[0]
    try:
        from iotbench.studies.evolution import evolution_table

        rows = [r for r in evolution_table([codec]) if r.framing == "single"]
    except Exception:  # noqa: BLE001 - the table is the codec suite's; without it, say nothing rather than guess
        return
    bad = [r for r in rows if r.outcome not in ("ok", "unavailable", "unsupported")]
    if bad:
        how = "; ".join(f"{r.direction}: {r.outcome}" for r in bad)
        d.changes.append(
            f"Schema changes: while a fleet upgrades, {code(codec)} gives {code(how)} (see the "
            "schema-evolution table). If both versions must be read, choose a codec that resolves "
            "schemas, or carry a version and keep both readers."
        )


def _is_new_connection(options: str) -> bool:
    import json

    for key, value in json.loads(options or "{}").items():
        text = str(value).lower()
        if ("keep" in key.lower() and value is False) or (
            ("conn" in key.lower() or "mode" in key.lower()) and text in NEW_CONNECTION_VALUES
        ):
            return True
    return False


def answer_changes(d: Decision, df: Any, ok: Any) -> None:
    """Fill ``d.changes``: sleeping devices, compression at a gateway, schema changes, connections, rates."""
    fresh = df[df["transport_options"].map(_is_new_connection)] if "transport_options" in df else df.iloc[0:0]
    handshake = fact("1.2-6.5 KB", "TLS full handshake, FACTS.md protocol framing table")
    ran = fresh[(fresh["status"] == "ok") & fresh[PUBLISH_P99].notna()] if not fresh.empty else fresh
    if not ran.empty:
        # like with like: qualifying cells when there are any, at one batch size, against kept-alive siblings
        ran = ran[ran.index.isin(ok.index)] if ran.index.isin(ok.index).any() else ran
        ran = smallest_batch(ran)
        siblings = df[
            df["transport"].isin(ran["transport"])
            & ~df.index.isin(fresh.index)
            & (df["status"] == "ok")
            & df[PUBLISH_P99].notna()
            & (df["batch"] == ran["batch"].iloc[0])
        ]
        kept = siblings[siblings.index.isin(ok.index)] if ran.index.isin(ok.index).all() else siblings
        line = (
            f"Devices that sleep between readings open a new connection for each: measured with "
            f"{code(ran['variant'].iloc[0])}, publish p99 {measure(ran, PUBLISH_P99, digits=2)} ms"
        )
        if not kept.empty:
            line += f" against {measure(kept, PUBLISH_P99, digits=2)} ms on a kept-alive connection"
        if not ran.index.isin(ok.index).any():
            line += " (and it did not qualify at this rate: see below)"
        d.changes.append(line + f"; over the internet each new TLS connection adds a {handshake} handshake.")
    else:
        d.changes.append(
            "Devices that sleep between readings cannot keep a connection open: each reading pays a new "
            f"connection (over HTTPS a TCP and TLS handshake of {handshake}, about "
            f"{fact('1 ms', 'TLS handshake CPU, FACTS.md')} of CPU at each end). Not measured in this run: "
            "add an HTTP variant with a new connection per request."
        )
    _compressed(d, ok)
    _evolution(d)
    namespaces = math.ceil(SCENARIO.devices / AMQP_CONNECTIONS_PER_NAMESPACE)
    d.changes.append(
        f"One AMQP connection per device means {fact('100,000', 'the scenario')} connections, but a Standard "
        f"namespace takes {fact('5,000', EH_LIMITS)}: {fact(str(namespaces), '100,000 / 5,000')} namespaces, "
        "or a gateway that multiplexes devices onto few connections (batching as it goes), or HTTPS, which "
        "has no connection limit and no connection charge. This run used "
        f"{measure(df, 'connections', 'max', digits=0)} sender connection(s) for "
        f"{measure(df, 'devices', 'max', digits=0)} simulated devices."
    )
    rates = sorted(df["target_eps"].dropna().unique())
    if len(rates) > 1:
        for variant, rows in df.groupby("variant", sort=True):
            good = rows[rows.index.isin(ok.index)]
            line = f"Higher rates: {code(variant)} "
            if good.empty:
                line += "qualified at no rate measured"
            else:
                line += f"qualified up to {measure(good, 'target_eps', 'max', digits=0)} events/s offered"
                bad = rows[~rows.index.isin(ok.index) & (rows["target_eps"] > good["target_eps"].max())]
                if not bad.empty:
                    line += (
                        f", and fell behind or lost readings from "
                        f"{measure(bad, 'target_eps', 'min', digits=0)} events/s"
                    )
            d.changes.append(line + ".")
    else:
        d.changes.append(
            f"Higher rates: this run offered one rate ({measure(df, 'target_eps', 'max', digits=0)} events/s), "
            "so where each protocol stops is not measured here. Each "
            f"{fact('1,000', EH_LIMITS)} events/s needs one more throughput unit, and a fleet that fires in "
            f"the same second (no start spread) offers {fact('60x', 'FACTS.md scenario')} the average."
        )
