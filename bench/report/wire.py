"""Bytes on the wire per reading, by layer, as measured (the results' ``wire`` key).

Every layer comes from the kernel's counters of the sending side's connections
(``iotbench.pipeline.sockets``): the codec's payload, the protocol's framing beyond it each
way, TCP/IP headers each way, and connection set-up and tear-down spread over the readings
the cell sent. TLS is a layer of its own where the run holds the same configuration with
and without TLS: the TLS cell's framing minus the clear one's (records), and its set-up
minus the clear one's per connection (the handshake).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["wire_table"]

_LAYERS = {
    "payload": "wire_up_payload",
    "framing up": "wire_up_framing",
    "framing down": "wire_down_framing",
    "TCP/IP up": "wire_up_tcp_ip",
    "TCP/IP down": "wire_down_tcp_ip",
    "set-up": "wire_setup_per_event",
    "tear-down": "wire_teardown_per_event",
}


def uses_tls(transport: str, options: dict[str, Any]) -> bool:
    """The cell's ``tls`` option, or the transport's default for it (``eventhubs``: on)."""
    if "tls" in options:
        return bool(options["tls"])
    try:
        from dataclasses import fields

        from iotbench.transports import get_transport

        defaults = {f.name: f.default for f in fields(get_transport(transport).Options)}
    except Exception:  # noqa: BLE001 - an unknown transport: no TLS known
        return False
    return bool(defaults.get("tls", False))


def _clear_twins(transport: str, options: dict[str, Any]) -> list[str]:
    """The variant labels the same configuration without TLS can have: ``tls = false`` said, or left
    to a default that is off."""
    from iotbench.results_api import variant_label

    clear = {k: v for k, v in options.items() if k != "tls"}
    twins = [variant_label(transport, {**clear, "tls": False})]
    if not uses_tls(transport, clear):
        twins.append(variant_label(transport, clear))
    return twins


def wire_table(df: Any, events_per_device_month: float) -> Any:
    """Per variant, serialization and batch: measured bytes per reading by layer (medians over repeats)."""
    import pandas as pd

    if "wire_up_total" not in df.columns:
        return pd.DataFrame()
    ran = df[(df["status"] == "ok") & df["wire_up_total"].notna()]
    if ran.empty:
        return pd.DataFrame()
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    for (variant, serialization, batch), g in ran.groupby(["variant", "serialization", "batch"], sort=True):
        options = json.loads(g["transport_options"].iloc[0] or "{}")
        transport = str(g["transport"].iloc[0])
        layers = {name: float(g[col].median()) for name, col in _LAYERS.items() if col in g}
        total = sum(v for v in layers.values() if v == v)  # NaN (no tear-down read) adds nothing
        row = {
            "variant": variant,
            "serialization": serialization,
            "batch": int(batch),
            "TLS": "yes" if uses_tls(transport, options) else "no",
            **layers,
            "total B/reading": total,
            "set-up B/connection": float((g["wire_setup_up_bytes"] + g["wire_setup_down_bytes"]).median()),
            "MB/device/month": total * events_per_device_month / 1e6,
            "_twins": _clear_twins(transport, options) if uses_tls(transport, options) else [],
        }
        rows[(variant, serialization, int(batch))] = row
    for row in rows.values():
        twin = next((rows[k] for t in row["_twins"] if (k := (t, row["serialization"], row["batch"])) in rows), None)
        if twin is not None:  # the TLS layer: this cell minus its clear twin, both measured
            row["of which TLS"] = (row["framing up"] + row["framing down"]) - (
                twin["framing up"] + twin["framing down"]
            )
            row["TLS handshake B/connection"] = row["set-up B/connection"] - twin["set-up B/connection"]
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "_twins"} for r in rows.values()])
    return frame
