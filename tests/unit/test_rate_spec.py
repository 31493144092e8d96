"""``rate`` and ``[rate_search]``: a bad value is one line naming the key and the fix (exit code 2);
the search's bounds keep every trial within this machine's limits."""

from __future__ import annotations

import pytest
from support import assert_spec_refused

from iotbench.model.limits import MAX_OFFERED_EPS
from iotbench.model.spec import Cell, RateSearch, SpecError, parse_spec
from iotbench.pipeline.ramp import Trials, climb, ramp


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('rate = "fast"', "spec key 'rate': 'fast' is not 'contract' or 'max'; give \"contract\""),
        ("rate = 5000", "spec key 'rate': 5000 is not 'contract' or 'max' (a fixed rate is devices / interval_s)"),
        ("[rate_search]\nfactor = 3", "spec key 'rate_search': is set but rate is 'contract'; set rate = \"max\""),
        ('rate = "max"\n[rate_search]\nfactr = 3', "spec key 'rate_search.factr': unknown key; did you mean 'factor'?"),
        ('rate = "max"\n[rate_search]\nfactor = 1', "spec key 'rate_search.factor': 1 is below 1.1"),
        (
            'rate = "max"\n[rate_search]\nmax_eps = 5000000',
            "spec key 'rate_search.max_eps': 5,000,000 is above 1,000,000",
        ),
        ('rate = "max"\n[rate_search]\nprecision = 0', "spec key 'rate_search.precision': 0.0 is zero"),
        ('rate = "max"\n[rate_search]\nstart_eps = "x"', "spec key 'rate_search.start_eps': 'x' is a str"),
        (
            'rate = "max"\n[rate_search]\nmin_eps = 900\nmax_eps = 500',
            "spec key 'rate_search.min_eps': 900 is above max_eps 500; give min_eps <= max_eps",
        ),
        (
            'rate = "max"\n[rate_search]\nstart_eps = 10\nmin_eps = 100',
            "spec key 'rate_search.start_eps': 10 is outside min_eps .. max_eps",
        ),
        ('rate = "max"\n[[matrix]]\nrate = "contract"', "spec key 'matrix[0].rate': cannot differ between matrix"),
    ],
)
def test_cli_names_the_key_and_exits_2(tmp_path, toml, expected):
    assert_spec_refused(tmp_path, toml, expected)


def test_the_default_is_the_contract_rate():
    spec = parse_spec({"devices": 100_000, "interval_s": 60})
    assert spec.rate == "contract" and spec.rate_search == RateSearch()
    assert parse_spec({"rate": "max"}).rate_search.max_eps == MAX_OFFERED_EPS


def test_a_search_too_long_for_this_machine_is_refused():
    with pytest.raises(SpecError, match=r"spec key 'duration_s': up to .* trials x \(warmup_s \+ duration_s\)"):
        parse_spec({"rate": "max", "duration_s": 86_400, "codecs": ["json", "msgpack"], "repeats": 5})
    # the memory of the top rate's trial: a day of readings at 1,000,000/s in the ledgers
    with pytest.raises(SpecError, match=r"spec key 'rate_search.max_eps': at 1,000,000 events/s"):
        parse_spec({"rate": "max", "duration_s": 10_000, "devices": 100_000, "codecs": ["json"]})


CELL = Cell("json", "inprocess", 1, "none", 1, 1000, 2.0)  # contract rate 500 events/s


def test_bounds_keep_the_interval_within_1_ms_and_a_day():
    assert RateSearch().bounds(CELL) == (500.0, 1.0, 1_000_000.0)
    assert RateSearch(max_eps=400).bounds(CELL) == (400.0, 1.0, 400.0)  # the start within the bounds
    few = Cell("json", "inprocess", 1, "none", 1, 10, 1.0)
    assert RateSearch().bounds(few)[2] == pytest.approx(10_000)  # 10 devices at 1 ms
    assert CELL.at_rate(2000).interval_s == 0.5 and CELL.at_rate(2000).devices == 1000


class _Link:
    """A pretend cell run: kept up at or below ``ceiling`` events/s."""

    def __init__(self, ceiling: float, sends: bool = True) -> None:
        self.ceiling, self.sends, self.offered = ceiling, sends, []

    def __call__(self, rate: float):
        from iotbench.model.results import CellResult

        self.offered.append(rate)
        ok = self.sends
        kept = ok and rate <= self.ceiling
        return CellResult(
            "c", "json", "inprocess", {}, 1, "none", 1, 1000, 1000 / rate, 1.0, 0.0, 0, rate,
            "ok" if ok else "failed", 0, 0 if not ok else 1, 0, 0, 0, 0, 0, 0, 0, 0,
            rate if kept else rate / 2, {"send_delay": {"p99": 1.0}}, {}, {}, "", None, "", 0.0,
            error=None if ok else "cannot connect",
        )  # fmt: skip


def test_ramp_climbs_then_halves_the_gap():
    link = _Link(ceiling=12_000)
    outcome = ramp(link, RateSearch(), CELL)
    assert link.offered[:6] == [500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16_000.0]
    assert outcome.end == "bracketed" and outcome.sustained_eps <= 12_000 < outcome.not_sustained_eps
    assert outcome.not_sustained_eps / outcome.sustained_eps <= 1.1 and outcome.trials == len(link.offered)
    assert outcome.trials <= RateSearch().most_trials(CELL)
    assert "stored" in outcome.shortfall


def test_ramp_descends_when_the_start_is_not_kept_up():
    link = _Link(ceiling=100)
    outcome = ramp(link, RateSearch(), CELL)
    assert link.offered[:4] == [500.0, 250.0, 125.0, 62.5]
    assert outcome.sustained_eps <= 100 < outcome.not_sustained_eps and outcome.end == "bracketed"


def test_ramp_ends_at_the_top_and_the_bottom_and_on_a_cell_that_cannot_run():
    assert ramp(_Link(ceiling=10**9), RateSearch(max_eps=3000), CELL).end == "top"
    bottom = ramp(_Link(ceiling=0.1), RateSearch(min_eps=100), CELL)
    assert bottom.end == "bottom" and bottom.sustained_eps is None and bottom.not_sustained_eps == 100
    link = _Link(ceiling=10**9, sends=False)
    failed = ramp(link, RateSearch(), CELL)
    assert failed.end == "failed" and failed.trials == 1 and failed.shortfall == "failed: cannot connect"


def test_climb_is_the_studies_ladder():
    link = _Link(ceiling=2500)
    assert climb(link, [3000, 1000, 2000])[0] == 2000 and link.offered == [1000, 2000, 3000]
    assert Trials(link).room
