"""The cost model against hand-worked examples (Event Hubs Standard rules, FACTS.md)."""

from __future__ import annotations

import pytest

from iotbench import SpecError, parse_spec
from iotbench.model.cost import (
    DEFAULT_PRICES,
    PricesError,
    Scenario,
    billed_ingress_units,
    estimate,
    parse_prices,
    throughput_units,
)

FABRIKAM = Scenario(devices=100_000, interval_s=60, bytes_per_event=100)


def test_fabrikam_rate_needs_two_throughput_units() -> None:
    # 100,000 / 60 = 1,666.7 events/s > 1,000 events/s per TU; 166.7 KB/s is far under 1 MB/s.
    assert FABRIKAM.events_per_s == pytest.approx(1666.67, abs=0.01)
    assert throughput_units(FABRIKAM.events_per_s, 100) == 2
    assert throughput_units(999, 100) == 1
    assert throughput_units(1000, 100) == 1
    assert throughput_units(1001, 100) == 2


def test_bytes_limit_wins_for_large_events() -> None:
    # 500 events/s of 4 KB = 2,048,000 B/s = 1.95 MB/s -> 2 TUs although under 1,000 events/s.
    assert throughput_units(500, 4096) == 2


def test_a_month_is_4_32_billion_events() -> None:
    # 100,000 devices x 1,440 readings a day x 30 days
    assert FABRIKAM.events_per_month == 4_320_000_000


def test_billed_units_single_events_one_unit_each() -> None:
    assert billed_ingress_units(4_320_000_000, 100, batch=1) == 4_320_000_000


def test_billed_units_batches_by_the_64kb_rule() -> None:
    # a batch of 100 x 100 B = 10,000 B fits in one 64 KB unit: 43.2 million units
    assert billed_ingress_units(4_320_000_000, 100, batch=100) == 43_200_000
    # a batch of 1,000 x 100 B = 100,000 B is two units (65,536 < 100,000 <= 131,072)
    assert billed_ingress_units(4_320_000_000, 100, batch=1000) == 8_640_000
    # a remainder batch counts by its own size: 250 events in batches of 100 -> 3 sends, 3 units
    assert billed_ingress_units(250, 100, batch=100) == 3


def test_a_batch_over_1mb_is_refused() -> None:
    with pytest.raises(ValueError, match="1 MB"):
        billed_ingress_units(10_000, 2000, batch=1000)


def test_monthly_estimate_hand_worked() -> None:
    cost = estimate(FABRIKAM, DEFAULT_PRICES, stored_bytes_per_event=50)
    assert cost.throughput_units == 2
    assert cost.tu_cost == pytest.approx(2 * 730 * 0.03)  # 43.80
    assert cost.ingress_units == 4_320_000_000
    assert cost.ingress_cost == pytest.approx(4320 * 0.028)  # 120.96
    assert cost.storage_gb == pytest.approx(216.0)  # 4.32e9 x 50 B
    assert cost.storage_cost == pytest.approx(216.0 * 0.018)
    assert cost.device_mb_month == pytest.approx(43_200 * 100 / 1e6)  # 4.32 MB per device
    batched = estimate(Scenario(100_000, 60, 100, batch=100))
    assert batched.ingress_cost == pytest.approx(43.2 * 0.028)


def test_connection_bytes_join_the_device_bandwidth() -> None:
    """Keep-alive or per-reading handshakes (the connection_cost study) add to the payload's 4.32 MB."""
    prices = parse_prices({"date": "2026-11-29", "cellular_per_mb": 0.01})
    cost = estimate(FABRIKAM, prices, connection_mb_per_device_month=2.5)
    assert cost.device_mb_month == pytest.approx(4.32 + 2.5)
    assert cost.connection_mb_month == 2.5
    assert cost.device_cost_month == pytest.approx(6.82 * 0.01)
    assert estimate(FABRIKAM).connection_mb_month == 0.0
    with pytest.raises(ValueError, match="0 or more"):
        estimate(FABRIKAM, connection_mb_per_device_month=-1)


def test_prices_override_and_validation() -> None:
    prices = parse_prices({"date": "2026-11-01", "eventhubs_tu_hour": 0.05})
    assert prices.eventhubs_tu_hour == 0.05 and prices.date == "2026-11-01"
    assert prices.eventhubs_ingress_per_million == DEFAULT_PRICES.eventhubs_ingress_per_million
    with pytest.raises(PricesError, match="prices.date"):
        parse_prices({"eventhubs_tu_hour": 0.05})
    with pytest.raises(PricesError, match="prices.tu_hour"):
        parse_prices({"date": "x", "tu_hour": 1})
    with pytest.raises(PricesError, match="give a number"):
        parse_prices({"date": "x", "eventhubs_tu_hour": -1})


def test_spec_prices_table() -> None:
    spec = parse_spec({"prices": {"date": "2026-11-01", "blob_hot_gb_month": 0.02}})
    assert spec.prices.blob_hot_gb_month == 0.02
    assert spec.as_dict()["prices"]["date"] == "2026-11-01"
    with pytest.raises(SpecError, match="prices.bogus"):
        parse_spec({"prices": {"date": "x", "bogus": 1}})
