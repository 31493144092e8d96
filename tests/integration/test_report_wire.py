"""The wire-bytes estimate against hand-worked sums of FACTS.md's per-message figures."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from iotbench.report.wire import _layers, wire_table

pytestmark = pytest.mark.server  # every test here starts a server


def test_mqtt_qos1_single_reading() -> None:
    # 100 B payload + (37 B PUBLISH framing + 4 B PUBACK) + 2 segments x 40 B TCP/IP = 221 B
    layers = _layers("mqtt", {"qos": 1}, 100.0, 1.0)
    assert layers is not None and layers["total"] == pytest.approx(221.0)
    assert _layers("mqtt", {"qos": 0}, 100.0, 1.0)["total"] == pytest.approx(100 + 37 + 40)


def test_https_new_connection_pays_the_handshakes() -> None:
    # 100 + 374 + 216 headers + 2 x 22 B TLS records + 2 x 40 B + (7 x 40 B TCP open/close + 6,500 B TLS)
    layers = _layers("http", {"mode": "new-connection", "tls": True}, 100.0, 1.0)
    assert layers["total"] == pytest.approx(100 + 590 + 44 + 80 + 280 + 6500)
    kept = _layers("http", {"mode": "keep-alive", "tls": True}, 100.0, 1.0)
    assert kept["handshakes"] == 0 and kept["total"] == pytest.approx(100 + 590 + 44 + 80)


def test_batching_spreads_framing_and_rest_batches_base64() -> None:
    amqp = _layers("amqp", {}, 60.0, 100.0)
    assert amqp["protocol"] == pytest.approx(86 / 100 + 10)  # frame + disposition per send, ~10 B per event inside
    rest = _layers("http", {"form": "batch"}, 60.0, 100.0, binary=True)
    assert rest["base64"] == pytest.approx(20.0)
    assert _layers("kafka", {}, 60.0, 1.0) is None  # no figure: not estimated rather than guessed


def test_wire_table_from_result_rows() -> None:
    df = pd.DataFrame(
        [
            {
                "status": "ok",
                "variant": "mqtt[qos=1]",
                "serialization": "json",
                "batch": 1,
                "transport": "mqtt",
                "transport_options": json.dumps({"qos": 1}),
                "codec": "json",
                "payload_bytes_mean": 100.0,
                "events_per_send": 1.0,
            }
        ]
    )
    table = wire_table(df, events_per_device_month=43_200)
    assert table.loc[0, "total"] == pytest.approx(221.0)
    assert table.loc[0, "MB/device/month"] == pytest.approx(221 * 43_200 / 1e6)
