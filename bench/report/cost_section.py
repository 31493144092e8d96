"""The cost section: the measured sizes put through ``iotbench.model.cost`` for Fabrikam's month."""

from __future__ import annotations

from typing import Any

from iotbench.model.cost import DEFAULT_PRICES, Prices, Scenario, estimate, parse_prices
from iotbench.report.decision import eligible
from iotbench.report.page import escape, note, table

__all__ = ["cost_section", "prices_from_run"]


def prices_from_run(run: dict[str, Any]) -> Prices:
    """The spec's dated prices as run (``run.json``), else the defaults."""
    raw = (run.get("spec") or {}).get("prices")
    if not raw:
        return DEFAULT_PRICES
    try:
        return parse_prices(raw)
    except ValueError:
        return DEFAULT_PRICES


FABRIKAM = Scenario()  # 100,000 devices, one reading a minute


def cost_section(df: Any, run: dict[str, Any], scenario: Scenario = FABRIKAM) -> str:
    import pandas as pd

    prices = prices_from_run(run)
    money = prices.currency
    parts = [
        f"<p>The scenario: {scenario.devices:,} devices, one reading every {scenario.interval_s:g} s = "
        f"{scenario.events_per_s:,.0f} events/s, {scenario.events_per_month / 1e9:,.2f} billion events a "
        "30-day month. Event Hubs Standard: a throughput unit (TU) takes 1 MB/s or 1,000 events/s of ingress; "
        "ingress is billed per 64 KB unit (a single small event is one unit, a batch up to 64 KB is one "
        "unit); a publication is at most 1 MB.</p>",
        _prices_table(prices),
    ]
    ok = eligible(df)
    source = ok if not ok.empty else df[df["status"] == "ok"] if not df.empty else df
    if source.empty or "payload_bytes_mean" not in source:
        parts.append(note("No cell ran: no measured sizes to price."))
        return "\n".join(parts)
    rows = []
    for (serialization, batch), g in source.groupby(["serialization", "batch"], sort=True):
        size = g["payload_bytes_mean"].median()
        if size != size:
            continue
        try:
            c = estimate(Scenario(scenario.devices, scenario.interval_s, float(size), int(batch)), prices)
        except ValueError as exc:
            parts.append(note(f"{escape(serialization)} batch {batch}: {escape(exc)}"))
            continue
        rows.append(
            {
                "serialization": serialization,
                "batch": int(batch),
                "bytes/reading": size,
                "TUs": c.throughput_units,
                "billed units/month (M)": c.ingress_units / 1e6,
                f"TUs {money}/month": c.tu_cost,
                f"ingress {money}/month": c.ingress_cost,
                f"Event Hubs {money}/month": c.eventhubs_cost,
                "MB/device/month": c.device_mb_month,
            }
        )
    parts.append("<h3>Event Hubs and device bandwidth, per month</h3>")
    parts.append(table(pd.DataFrame(rows), digits=2))
    parts.append(
        "<p>MB/device/month here is the payload alone; what the device's link carries -- protocol, TLS, "
        "TCP/IP, connection set-up -- is measured below.</p>"
    )
    parts.append("<h3>The device's link, per month (measured)</h3>")
    parts.append(_device_link(source, prices, scenario))
    parts.append("<h3>Cold storage, per month of data</h3>")
    parts.append(_storage(source, run, prices, scenario))
    return "\n".join(parts)


def _device_link(source: Any, prices: Prices, scenario: Scenario) -> str:
    """Measured wire bytes per reading (the ``wire`` key, every layer) -> MB per device per month."""
    from iotbench.report.wire import wire_table

    frame = wire_table(source, scenario.events_per_device_month)
    if frame.empty:
        return note("No cell measured its wire bytes (results written before issue 11, or no TCP/UDP transport).")
    money = prices.currency
    out = frame[["variant", "serialization", "batch", "TLS", "total B/reading", "MB/device/month"]].copy()
    out["fleet GB/month"] = out["MB/device/month"] * scenario.devices / 1e3
    priced = prices.cellular_per_mb > 0
    if priced:
        out[f"{money}/device/month"] = out["MB/device/month"] * prices.cellular_per_mb
        out[f"fleet {money}/month"] = out[f"{money}/device/month"] * scenario.devices
    text = (
        f"<p>Bytes per reading on the device's link as measured in each cell (payload, framing, TLS, TCP/IP "
        f"headers, connection set-up and tear-down spread over the cell: the transports section has the "
        f"layers), at {scenario.events_per_device_month:,.0f} readings per device per month. Connections "
        "last as long as a cell here; an idle connection's keep-alive and a sleeping device's handshake per "
        "reading come on top. "
        + (
            f"Cellular data priced at {prices.cellular_per_mb:g} {escape(money)}/MB."
            if priced
            else "Set <code>cellular_per_mb</code> in <code>[prices]</code> to price it."
        )
        + "</p>"
    )
    return text + table(out, digits=2)


def _prices_table(prices: Prices) -> str:
    import pandas as pd

    frame = pd.DataFrame(
        [
            ("Event Hubs Standard, per TU-hour", prices.eventhubs_tu_hour),
            ("Event Hubs ingress, per million 64 KB units", prices.eventhubs_ingress_per_million),
            ("Blob storage hot LRS, per GB-month", prices.blob_hot_gb_month),
            ("Blob storage cool LRS, per GB-month", prices.blob_cool_gb_month),
            ("Cellular data, per MB", prices.cellular_per_mb),
        ],
        columns=["item", f"{prices.currency}"],
    )
    return (
        f"<p>Prices as of <strong>{escape(prices.date)}</strong>, {escape(prices.region)}, "
        f"{escape(prices.currency)} (source: {escape(prices.source)}); edit them in the spec's "
        "<code>[prices]</code> table.</p>" + table(frame, digits=4)
    )


def _storage(source: Any, run: dict[str, Any], prices: Prices, scenario: Scenario) -> str:
    import pandas as pd

    fmt = ((run.get("spec") or {}).get("cold_store") or {}).get("format", "cold store")
    rows = []
    if "cold_store_bytes_per_event" in source:
        stored = source[source["cold_store_bytes_per_event"].notna()]
        if len(stored):
            size = stored["cold_store_bytes_per_event"].median()
            rows.append({"format": f"{fmt} (measured on disk)", "bytes/reading": size})
    for serialization, g in source.groupby("serialization", sort=True):
        top = g[g["batch"] == g["batch"].max()]
        rows.append(
            {
                "format": f"payloads as sent: {serialization}, batch {int(top['batch'].iloc[0])}",
                "bytes/reading": top["payload_bytes_mean"].median(),
            }
        )
    out = []
    for row in rows:
        c = estimate(Scenario(scenario.devices, scenario.interval_s, 100.0), prices, row["bytes/reading"])
        cool = estimate(Scenario(scenario.devices, scenario.interval_s, 100.0), prices, row["bytes/reading"], "cool")
        out.append(
            {
                **row,
                "GB/month": c.storage_gb,
                f"hot {prices.currency}/month": c.storage_cost,
                f"cool {prices.currency}/month": cool.storage_cost,
            }
        )
    text = (
        "<p>GB of one month's readings (GB = 10<sup>9</sup> bytes) and what keeping them costs per month. "
        "'Payloads as sent' is what a store of the raw bodies (Event Hubs Capture's Avro <code>Body</code>, "
        "without its per-record envelope) would hold.</p>"
    )
    if not len(stored):
        text += note("No cold-store files were found on disk (moved or cleaned up): only payload sizes.")
    return text + table(pd.DataFrame(out), digits=2)
