"""Accounting is per (device, seq): a duplicate never hides a loss."""

from __future__ import annotations

from iotbench.pipeline.accounting import SeqLedger, reconcile, stored_among


def _ledger(pairs):
    ledger = SeqLedger()
    for device, seq in pairs:
        ledger.add(device, seq)
    return ledger


def test_a_duplicate_does_not_hide_a_loss():
    sent = _ledger([("a", 0), ("a", 1), ("b", 0), ("b", 1)])
    stored = _ledger([("a", 0), ("a", 1), ("a", 1), ("b", 0)])  # same total, one lost, one duplicate
    assert sent.total() == stored.total()
    tally = reconcile(sent, stored)
    assert (tally.stored, tally.lost, tally.duplicated, tally.unexpected) == (3, 1, 1, 0)


def test_unexpected_events_are_counted():
    tally = reconcile(_ledger([("a", 0)]), _ledger([("a", 0), ("a", 5), ("ghost", 0)]))
    assert (tally.stored, tally.lost, tally.unexpected) == (3, 0, 2)


def test_ranges_round_trip_and_merge_adds_shards():
    ledger = _ledger([("a", s) for s in (0, 1, 2, 5, 6)] + [("b", 3)])
    assert ledger.to_ranges() == {"a": [[0, 2], [5, 6]], "b": [[3, 3]]}
    assert SeqLedger.from_ranges(ledger.to_ranges()).pairs() == ledger.pairs()
    shard = _ledger([("a", 1), ("c", 0)])
    ledger.merge(shard)
    tally = reconcile(_ledger(sorted(ledger.pairs())), ledger)
    assert tally.duplicated == 1 and tally.stored == 7


def test_stored_among_counts_distinct_failed_events_that_arrived():
    failed = _ledger([("a", 1), ("a", 9), ("b", 0), ("c", 4)])
    stored = _ledger([("a", 0), ("a", 1), ("a", 1), ("b", 0), ("c", 3)])  # a/1 twice counts once; a/9 beyond a's marks
    assert stored_among(failed, stored) == 2
    assert stored_among(SeqLedger(), stored) == 0 and stored_among(failed, SeqLedger()) == 0
