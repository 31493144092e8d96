"""The transport-rates benchmark (README table) asks for transports and options that exist."""

from __future__ import annotations

from iotbench.studies.transport_rates import RATES, VARIANTS, measure
from iotbench.transports import TRANSPORTS


def test_every_variant_names_a_registered_transport_and_its_known_options():
    for variant in VARIANTS:
        assert variant.transport in TRANSPORTS.names(), variant
        known = TRANSPORTS.load(variant.transport).Options.names()
        assert set(variant.options) <= set(known), (variant.label, set(variant.options) - set(known))
    assert all(rates == sorted(rates) for rates in RATES.values())


def test_measure_stops_at_the_first_rate_not_sustained(tmp_path):
    inprocess = next(v for v in VARIANTS if v.transport == "inprocess")
    row = measure(inprocess, 100, tmp_path, rates=[1_000, 2_000], duration_s=1.0)
    assert row.best == 2_000 and [t.target_eps for t in row.trials] == [1_000, 2_000]
    assert all(t.events_lost == 0 and t.status == "ok" for t in row.trials)
