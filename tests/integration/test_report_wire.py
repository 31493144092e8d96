"""The report's wire table: measured layers from result rows, and TLS as the difference of twins."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from iotbench.report.wire import uses_tls, wire_table


def _row(variant: str, options: dict, framing_up: float, setup: float) -> dict:
    return {
        "status": "ok",
        "variant": variant,
        "serialization": "json",
        "batch": 1,
        "transport": "mqtt",
        "transport_options": json.dumps(options),
        "wire_up_payload": 200.0,
        "wire_up_framing": framing_up,
        "wire_down_framing": 4.0,
        "wire_up_tcp_ip": 52.0,
        "wire_down_tcp_ip": 52.0,
        "wire_up_total": 200.0 + framing_up + 52.0,
        "wire_setup_per_event": 0.5,
        "wire_teardown_per_event": 0.1,
        "wire_setup_up_bytes": setup,
        "wire_setup_down_bytes": 100.0,
    }


def test_measured_layers_add_up_and_tls_is_the_twins_difference() -> None:
    df = pd.DataFrame(
        [
            _row("mqtt[qos=1]", {"qos": 1}, 40.0, 200.0),
            _row("mqtt[qos=1,tls=true]", {"qos": 1, "tls": True}, 80.0, 800.0),
        ]
    )
    table = wire_table(df, events_per_device_month=43_200).set_index("variant")
    clear, tls = table.loc["mqtt[qos=1]"], table.loc["mqtt[qos=1,tls=true]"]
    assert clear["total B/reading"] == pytest.approx(200 + 40 + 4 + 52 + 52 + 0.5 + 0.1)
    assert clear["MB/device/month"] == pytest.approx(clear["total B/reading"] * 43_200 / 1e6)
    assert clear["TLS"] == "no" and tls["TLS"] == "yes"
    assert tls["of which TLS"] == pytest.approx(40.0)  # (80 + 4) - (40 + 4)
    assert tls["TLS handshake B/connection"] == pytest.approx(600.0)
    assert pd.isna(clear["of which TLS"])


def test_tls_default_comes_from_the_transport() -> None:
    assert uses_tls("mqtt", {}) is False and uses_tls("mqtt", {"tls": True}) is True
    assert uses_tls("no-such-transport", {}) is False


def test_rows_without_measurements_give_an_empty_table() -> None:
    df = pd.DataFrame([{"status": "ok", "variant": "inprocess", "wire_up_total": float("nan")}])
    assert wire_table(df, 43_200).empty
    assert wire_table(pd.DataFrame([{"status": "ok"}]), 43_200).empty


def test_the_cost_section_prices_the_measured_link() -> None:
    from dataclasses import replace

    from iotbench.model.cost import DEFAULT_PRICES, Scenario
    from iotbench.report.cost_section import _device_link

    df = pd.DataFrame([_row("mqtt[qos=1]", {"qos": 1}, 40.0, 200.0)])
    total = 200 + 40 + 4 + 52 + 52 + 0.5 + 0.1
    unpriced = _device_link(df, DEFAULT_PRICES, Scenario())
    assert f"{total * 43_200 / 1e6:.2f}" in unpriced and "cellular_per_mb" in unpriced
    priced = _device_link(df, replace(DEFAULT_PRICES, cellular_per_mb=0.5), Scenario())
    fleet = total * 43_200 / 1e6 * 0.5 * 100_000
    assert f"{fleet:,.2f}" in priced  # the fleet's cellular bill, a month
