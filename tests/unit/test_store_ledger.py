"""The receiving side's bulk ledger counts exactly what a SeqLedger marked one by one counts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotbench.pipeline.accounting import SeqLedger, StoreLedger

payloads = st.lists(
    st.lists(
        st.tuples(
            st.sampled_from([f"d{i}" for i in range(40)]),
            # mostly small seqs, some beyond the dense table, a few at the bound
            st.one_of(st.integers(0, 70), st.integers(StoreLedger.DENSE_SEQS - 2, StoreLedger.DENSE_SEQS + 3)),
            st.booleans(),
        ),
        min_size=1,
        max_size=30,
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(payloads, st.integers(1, 64), st.integers(0, 50))
def test_counts_match_one_by_one_marking(payloads, flush_at, devices):
    bulk = StoreLedger(max_seq=StoreLedger.DENSE_SEQS + 10, devices=devices)
    bulk.FLUSH_AT = flush_at  # flushes in the middle of the stream, as a long cell would
    exact = SeqLedger(max_seq=StoreLedger.DENSE_SEQS + 10)
    window: dict[tuple[str, int], bool] = {}
    for payload in payloads:
        # a (device, seq) carries one intended time, so one window flag, in every copy
        flags = [window.setdefault((d, s), w) for d, s, w in payload]
        bulk.add([d for d, _, _ in payload], [s for _, s, _ in payload], flags)
        for d, s, _ in payload:
            exact.add(d, s)
    assert _marks(bulk.ledger()) == _marks(exact)
    assert bulk.distinct == exact.distinct() == len(window)
    assert bulk.window_distinct == sum(window.values())


def _marks(ledger: SeqLedger) -> dict[str, bytes]:
    """Counts per device, trailing zeros (seqs not seen) left out: the two keep different room."""
    return {d: bytes(m).rstrip(b"\0") for d, m in ledger.devices().items()}


def test_a_copy_past_255_stays_at_255():
    bulk = StoreLedger(max_seq=10)
    for _ in range(3):
        bulk.add(["d"] * 100, [3] * 100, [True] * 100)
    assert bulk.ledger().devices()["d"][3] == 255 and bulk.distinct == 1


def test_a_seq_outside_the_bound_is_refused():
    bulk = StoreLedger(max_seq=10)
    bulk.add(["d"], [11], [True])
    with pytest.raises(ValueError, match=r"outside 0\.\.10"):
        bulk.ledger()
