"""Bytes on the wire per reading, by layer: measured payload plus the per-message framing of FACTS.md.

The runner counts payload bytes only (what the codec produced); the layers below
it are estimated from per-message figures measured or computed once on this kind of
machine (FACTS.md, "Protocol framing"). The estimate assumes one TCP segment each way
per send; a variant that opens a new connection per send (``mode = "new-connection"``)
also pays TCP's open and close and, with TLS, a full handshake with a real chain. It is labelled as an estimate in
the report, next to the measured payload.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["FRAMING", "wire_table"]

# (request, response) protocol bytes per send; None where FACTS.md has no figure
FRAMING: dict[str, tuple[int, int] | None] = {
    "amqp": (58, 28),  # transfer frame ~53 B + data section 5 B; disposition 28 B
    "eventhubs": (58, 28),
    "mqtt": (37, 4),  # 2 B header + 2 B topic length + ~31 B topic + 2 B packet id; PUBACK 4 B (QoS 1)
    "http": (374, 216),  # request headers with a SAS token; response headers
    "eventhubs-https": (374, 216),
    "inprocess": (0, 0),
}
TCP_IP = 40  # per segment (IPv4 20 + TCP 20, no options)
TCP_OPEN_CLOSE = 7 * TCP_IP  # connect 3 packets, close 4
TLS_HANDSHAKE = 6_500  # a full handshake with a real certificate chain (1.2-2.5 KB with one self-signed cert)
TLS_RECORD = 22  # TLS 1.3, per record
AMQP_IN_BATCH = 10  # per event inside an AMQP batch


def _binary(codec: str) -> bool:
    try:
        from iotbench.codecs import get_codec

        return bool(get_codec(codec).binary)
    except Exception:  # noqa: BLE001 - an unknown codec: assume text, no base64 growth
        return False


def _layers(
    transport: str, options: dict[str, Any], payload: float, per_send: float, binary: bool = False
) -> dict[str, float] | None:
    framing = FRAMING.get(transport)
    if framing is None:
        return None
    request, response = framing
    if transport == "mqtt" and options.get("qos") == 0:
        response = 0  # no PUBACK
    if transport in ("amqp", "eventhubs") and options.get("settled"):
        response = 0  # pre-settled: no disposition
    protocol = (request + response) / per_send
    if transport in ("amqp", "eventhubs") and per_send > 1:
        protocol += AMQP_IN_BATCH
    segments = 2 if response else 1
    tls = TLS_RECORD * segments / per_send if options.get("tls") else 0.0
    tcp = 0.0 if transport == "inprocess" else TCP_IP * segments / per_send
    # the REST batch form carries binary bodies as base64 strings: +1/3
    base64 = payload / 3 if binary and options.get("form") == "batch" and "http" in transport else 0.0
    fresh = str(options.get("mode", "")).lower() in ("new-connection", "new_connection", "new")
    handshakes = (TCP_OPEN_CLOSE + (TLS_HANDSHAKE if options.get("tls") else 0)) / per_send if fresh else 0.0
    total = payload + base64 + protocol + tls + tcp + handshakes
    return {
        "payload": payload,
        "base64": base64,
        "protocol": protocol,
        "TLS": tls,
        "TCP/IP": tcp,
        "handshakes": handshakes,
        "total": total,
    }


def wire_table(df: Any, events_per_device_month: float) -> Any:
    """Per variant, serialization and batch: bytes per reading by layer (medians of the measured payload)."""
    import pandas as pd

    ran = df[(df["status"] == "ok") & df["payload_bytes_mean"].notna() & df["events_per_send"].notna()]
    rows = []
    for (variant, serialization, batch), g in ran.groupby(["variant", "serialization", "batch"], sort=True):
        options = json.loads(g["transport_options"].iloc[0] or "{}")
        layers = _layers(
            str(g["transport"].iloc[0]),
            options,
            g["payload_bytes_mean"].median(),
            max(1.0, g["events_per_send"].median()),
            _binary(str(g["codec"].iloc[0])),
        )
        if layers is None:
            continue
        rows.append(
            {
                "variant": variant,
                "serialization": serialization,
                "batch": int(batch),
                **layers,
                "MB/device/month": layers["total"] * events_per_device_month / 1e6,
            }
        )
    return pd.DataFrame(rows)
