"""The fleet's schedule is open loop: intended times never move, whenever they are read."""

from __future__ import annotations

import pytest

from iotbench.pipeline.fleet import Fleet, FleetConfig

START = 1_700_000_000.0


def _fleet(seconds: float = 10.0, **kw) -> Fleet:
    fleet = Fleet(FleetConfig(**{"devices": 1000, "interval_s": 1.0, "seed": 4, **kw}))
    fleet.schedule(start=START, end=START + seconds)
    return fleet


def test_rate_matches_devices_over_interval():
    fleet = _fleet()
    due = fleet.due(float("inf"))
    assert len(due) == fleet.scheduled
    assert 9_900 <= len(due) <= 10_100  # 1000 devices x 10 s at 1 s, +-jitter at the edges
    assert FleetConfig(devices=100_000, interval_s=60).target_eps == pytest.approx(1666.67, abs=0.01)


def test_schedule_does_not_depend_on_when_it_is_read():
    eager = [(t, i, r.seq) for t, i, r in _fleet().due(float("inf"))]
    late = _fleet()
    polled = []
    for k in range(1, 1200):  # read in 10 ms steps with a chunk limit, as the runner does
        polled += [(t, i, r.seq) for t, i, r in late.due(START + k * 0.01, limit=37)]
    polled += [(t, i, r.seq) for t, i, r in late.due(float("inf"))]
    assert sorted(polled) == sorted(eager)


def test_nothing_comes_before_its_time_and_devices_stay_in_order():
    fleet = _fleet(jitter=0.4)
    last: dict[int, tuple[float, int]] = {}
    for k in range(1, 1100):
        now = START + k * 0.01
        for intended, i, reading in fleet.due(now):
            assert intended <= now
            if i in last:
                assert intended > last[i][0] and reading.seq == last[i][1] + 1
            last[i] = (intended, reading.seq)


def test_jitter_and_phase_spread():
    fleet = _fleet(devices=2000, jitter=0.1, seconds=3.0)
    due = fleet.due(float("inf"))
    firsts = sorted(t for t, _, r in due if r.seq == 0)
    assert firsts[0] >= START and firsts[-1] < START + 1.2  # phases over one interval (+ jitter)
    gaps = {}
    for t, i, _ in due:
        gaps.setdefault(i, []).append(t)
    deltas = [b - a for ts in gaps.values() for a, b in zip(ts, ts[1:])]
    assert min(deltas) >= 0.8 - 1e-9 and max(deltas) <= 1.2 + 1e-9
    assert max(deltas) - min(deltas) > 0.3  # the jitter is really there


def test_next_due_is_the_earliest_pending_time():
    fleet = _fleet(seconds=2.0)
    first = fleet.next_due()
    due = fleet.due(first)
    assert due and all(t == first for t, _, _ in due)
    assert fleet.next_due() > first
    fleet.due(float("inf"))
    assert fleet.next_due() is None


def test_the_rate_is_steady_from_the_first_second():
    fleet = Fleet(FleetConfig(devices=60_000, interval_s=60, jitter=0.1, seed=2))
    fleet.schedule(start=START, end=START + 10)
    per_second = [0] * 10
    for t, _, _ in fleet.due(float("inf")):
        per_second[int(t - START)] += 1
    assert all(850 <= n <= 1150 for n in per_second), per_second  # 1,000/s, no ramp over the jitter's width
