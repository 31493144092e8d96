"""The decision: which protocol and which serialization for Fabrikam's scenario, and why.

The rules, in the order they are applied (the report prints them too):

1. A cell counts only if it kept up by the one rule the rate search and the CLI use too
   (iotbench.model.sustain: ran, at least 95 % of the offered rate stored over the measured
   window, nothing lost or late, send delay p99 within its bound) and had no failed sends.
2. Serialization: the smallest payload per event at the batch size every candidate ran
   (the smallest such; batch 1 is what one device sends), because bytes are paid for on every cellular link, in
   ingress and at rest, while at 1,667 events/s encode/decode CPU is small next to
   the network path (the codec section's benchmarks show by how much). Sizes within
   5 % of each other are called practically equal: then schema evolution and
   tooling should decide, not the bytes.
3. Protocol: among the real transports (the in-process reference is a test double
   and never recommended), the lowest median end-to-end p99 latency with that
   serialization at the smallest batch measured.
4. A difference is called significant only when a two-sided Mann-Whitney U test of
   the two configurations' repeats gives p < 0.05 (iotbench.stats: a rank test, so
   one disturbed repeat cannot make or break it). It needs 4 repeats of each to
   reach 5 %: with fewer the report says "too few repeats to tell", and with one
   run "a single run", never a tie. Figures are medians of the repeats; their 95 %
   intervals (a seeded percentile bootstrap) are under Method.

Every number is a ``Figure`` with its recipe (see ``figures``).
"""

from __future__ import annotations

from typing import Any

from iotbench.report.changes import answer_changes
from iotbench.report.figures import fact, ingress_units_for, measure, percent_less, throughput_units_for, verdict
from iotbench.report.rules import (
    BYTES,
    EH_LIMITS,
    P99,
    PUBLISH_P99,
    REFERENCE_TRANSPORTS,
    SCENARIO,
    SUSTAINED,
    Decision,
    code,
    rank_by,
    smallest_batch,
)
from iotbench.stats import compare_repeats

__all__ = ["Decision", "decide", "eligible", "REFERENCE_TRANSPORTS"]


def eligible(df: Any) -> Any:
    """Rows that qualify: kept up by the one shared rule (iotbench.model.sustain) and failed no send."""
    if df.empty:
        return df
    return df[df["kept_up"].astype(bool) & (df["events_failed"].fillna(0) == 0)]


def _why_excluded(df: Any, ok: Any) -> list[str]:
    out = []
    for variant, rows in df[~df.index.isin(ok.index)].groupby("variant", sort=True):
        failed = rows[rows["status"] != "ok"]
        lost = rows[rows["events_lost"] > 0]
        slow = rows[(rows["status"] == "ok") & (rows["sustained"].fillna(0) < SUSTAINED)]
        behind = rows[
            (rows["status"] == "ok")
            & (rows["sustained"].fillna(0) >= SUSTAINED)
            & (rows["events_lost"] == 0)
            & ~rows["kept_up"].astype(bool)
        ]
        failed_sends = rows[(rows["status"] == "ok") & (rows["events_failed"].fillna(0) > 0)]
        why = []
        if not failed.empty:
            why.append(
                f"{measure(failed, 'repeat', 'count', digits=0)} run(s) failed "
                f"({code(str(failed['error'].iloc[0])[:160])})"
            )
        if not lost.empty:
            why.append(f"{measure(lost, 'events_lost', 'sum', digits=0)} events lost")
        if not slow.empty:
            why.append(
                f"kept up with only {measure(slow, 'sustained', 'min', scale=100, digits=0)}% of the offered rate"
            )
        if not behind.empty:
            why.append(f"did not keep up: {code(behind['shortfall'].iloc[0])}")
        if not failed_sends.empty:
            why.append(f"{measure(failed_sends, 'events_failed', 'sum', digits=0)} events in failed sends")
        if why:
            out.append(f"{code(variant)}: " + "; ".join(why))
    return out


def _scenario_rate(ok: Any) -> Any:
    """Rows at the offered rate that stands for the scenario: the lowest at or above 1,667/s, else the highest."""
    rates = sorted(ok["target_eps"].unique())
    above = [r for r in rates if r >= SCENARIO.events_per_s * 0.999]
    return ok[ok["target_eps"] == (above[0] if above else rates[-1])]


def _verdict(a: Any, b: Any, metric: str) -> str:
    """A test's verdict, unless neither side varies: a seeded codec's sizes are the same in every
    repeat, so they differ exactly, with no noise to test against."""
    if a[metric].dropna().nunique() == 1 and b[metric].dropna().nunique() == 1:
        return "exact: the same in every run"
    return verdict(compare_repeats(list(a[metric]), list(b[metric])))


def decide(df: Any) -> Decision:
    """The decision for the scenario from a ``load_results`` frame."""
    d = Decision()
    if df.empty:
        d.gaps.append("The results folder has no cell runs: nothing to decide from.")
        return d
    ok = eligible(df)
    d.excluded = _why_excluded(df, ok)
    if ok.empty:
        d.gaps.append("No cell qualified (every one failed, lost events or fell behind): no recommendation.")
        return d
    at_rate = _scenario_rate(ok)
    if len(ok["target_eps"].unique()) > 1:
        d.gaps.append(
            f"Several rates were offered: the choice is made at "
            f"{measure(at_rate, 'target_eps', 'max', digits=0)} events/s, the rate nearest the scenario's "
            f"{fact(f'{SCENARIO.events_per_s:,.0f}', '100,000 devices / 60 s')} (at or above it when "
            "measured); see 'Higher rates' for the others."
        )
    _choose_serialization(d, at_rate)
    _choose_protocol(d, at_rate)
    _codec_latency(d, at_rate)
    if df["repeat"].max() == 0:
        d.gaps.append(
            "Every configuration ran once: no confidence intervals; set <code>repeats</code> "
            "in the spec to tell real differences from noise."
        )
    d.reasons = d.reasons[:5]
    answer_changes(d, df, ok)
    return d


def _shared_batch(d: Decision, ok: Any) -> Any:
    """Rows at the batch size the most serializations ran (the smallest such): codecs are compared
    like with like, never one codec's single sends against another's gateway batches."""
    ran = ok.groupby("batch")["serialization"].nunique()
    batch = min(b for b, n in ran.items() if n == ran.max())
    rows = ok[ok["batch"] == batch]
    left = sorted(set(ok["serialization"]) - set(rows["serialization"]))
    if left:
        d.gaps.append(
            f"{', '.join(code(s) for s in left)} did not run (or qualify) at batch {batch}, where the "
            "other serializations are compared: run every codec at one batch size to compare them all."
        )
    return rows


def _sent_as(batch: int) -> str:
    return "sent alone" if batch == 1 else f"in sends of {batch}"


def _choose_serialization(d: Decision, ok: Any) -> None:
    single = _shared_batch(d, ok)
    ranked, seen = [], set()
    for name, rows in rank_by(single, "serialization", BYTES):  # each codec's best form, so the runner-up
        codec = str(rows["codec"].iloc[0])  # is another codec, not the same one zipped
        if codec not in seen:
            seen.add(codec)
            ranked.append((name, rows))
    if not ranked:
        d.gaps.append("No payload sizes in the results: the serialization cannot be chosen.")
        return
    (best, rows), *rest = ranked
    d.serialization = best
    d.batch = int(single["batch"].min())
    size = measure(rows, BYTES)
    month = measure(rows, BYTES, scale=SCENARIO.events_per_device_month / 1e6, digits=2)
    if not rest:
        d.gaps.append(f"Only one serialization ({code(best)}) qualified: no codec comparison.")
        d.reasons.append(
            f"{code(best)} carries a reading in {size} B; at one reading a minute that is "
            f"{month} MB per device per month of payload."
        )
        return
    second, second_rows = rest[0]
    d.serialization_runner_up = second
    other = measure(second_rows, BYTES)
    smaller = percent_less(size, other)
    if smaller.value < 10:
        smaller = percent_less(size, other, digits=1)
    close = (
        f" Within {fact('5%', 'the report rule for practically equal sizes')}: practically equal, so let "
        "schema evolution (codec section) and tooling decide between them."
        if smaller.value < 5
        else ""
    )
    d.reasons.append(
        f"Serialization {code(best)}: {size} B per reading {_sent_as(d.batch)}, {smaller}% smaller than "
        f"{code(second)} ({other} B; {_verdict(rows, second_rows, BYTES)}).{close}"
    )
    d.reasons.append(
        f"At one reading a minute that is {month} MB of payload per device per month against "
        f"{measure(second_rows, BYTES, scale=SCENARIO.events_per_device_month / 1e6, digits=2)} MB "
        "-- cellular plans bill by the MB, and storage by the byte."
    )
    _azure(d, ok, rows)
    batched = ok[(ok["serialization"] == best) & (ok["batch"] > d.batch)]
    if not batched.empty:
        top = batched[batched["batch"] == batched["batch"].max()]
        d.reasons.append(
            f"Batched by a gateway ({measure(top, 'batch', 'max', digits=0)} per send) "
            f"{code(best)} costs {measure(top, BYTES)} B per reading."
        )


def _azure(d: Decision, ok: Any, single: Any) -> None:
    """The chosen serialization in Event Hubs' units: throughput units and 64 KB billed ingress per month."""
    size = measure(single, BYTES)
    per_tu = fact("1,000", EH_LIMITS)
    line = (
        f"Event Hubs Standard needs {throughput_units_for(size)} throughput units for the scenario (each "
        f"takes {per_tu} events/s or {fact('1 MB/s', EH_LIMITS)}). "
        f"{'Sent one reading per call' if d.batch == 1 else f'Sent {d.batch} readings per call'}, "
        f"{code(str(d.serialization))} is {ingress_units_for(size, measure(single, 'batch', 'max', digits=0))} "
        f"million billed ingress units a month (one {fact('64 KB', EH_LIMITS)} unit per send)"
    )
    batched = ok[(ok["serialization"] == d.serialization) & (ok["batch"] > single["batch"].max())]
    if not batched.empty:
        top = batched[batched["batch"] == batched["batch"].max()]
        line += (
            f"; batched {measure(top, 'batch', 'max', digits=0)} per send by a gateway, "
            f"{ingress_units_for(measure(top, BYTES), measure(top, 'batch', 'max', digits=0))} million"
        )
    d.azure.append(line + ". Prices, storage and bandwidth: see Cost on Azure.")


def _choose_protocol(d: Decision, ok: Any) -> None:
    real = ok[~ok["transport"].isin(REFERENCE_TRANSPORTS)]
    if real.empty:
        names = ", ".join(code(t) for t in sorted(ok["transport"].unique()))
        d.gaps.append(
            f"No real protocol ran in this results folder (only {names}, the in-process reference): "
            "the protocol cannot be chosen from it. Add mqtt, http, amqp, kafka or eventhubs "
            "to the spec's transports."
        )
        return
    same = real[real["serialization"] == d.serialization] if d.serialization else real
    pool = same if not same.empty else real
    import pandas as pd

    candidates = pd.concat([smallest_batch(g) for _, g in pool.groupby("variant", sort=True)])
    ranked = rank_by(candidates, "variant", P99)
    if not ranked:
        d.gaps.append("No end-to-end latency in the results: the protocol cannot be ranked.")
        return
    (best, rows), *rest = ranked
    d.protocol = best
    p99 = measure(rows, P99, digits=2)
    d.reasons.insert(
        0,
        (
            f"Protocol {code(best)} delivered every reading: {measure(rows, 'events_sent', 'sum', digits=0)} sent, "
            f"{measure(rows, 'events_lost', 'sum', digits=0)} lost, "
            f"{measure(rows, 'events_duplicated', 'sum', digits=0)} duplicated, keeping up with "
            f"{measure(rows, 'target_eps', digits=0)} events/s offered "
            f"({measure(rows, 'throughput_eps', digits=0)} stored per second; the scenario needs "
            f"{fact(f'{SCENARIO.events_per_s:,.0f}', '100,000 devices / 60 s')})."
        ),
    )
    if rest:
        second, second_rows = rest[0]
        d.protocol_runner_up = second
        latency = compare_repeats(list(rows[P99]), list(second_rows[P99]))
        tie = (
            " A tie within noise: on latency either will do, so let the connection model below decide."
            if latency.significant is False
            else ""
        )
        d.reasons.insert(
            1,
            (
                f"End-to-end p99 latency {p99} ms with {code(best)} against {measure(second_rows, P99, digits=2)} ms "
                f"with {code(second)} ({verdict(latency)}).{tie}"
            ),
        )
        d.runner_up.append(
            f"Protocol runner-up: {code(second)} (p99 {measure(second_rows, P99, digits=2)} ms, "
            f"publish p99 {measure(second_rows, PUBLISH_P99, digits=2)} ms, "
            f"{measure(second_rows, 'events_lost', 'sum', digits=0)} lost)."
        )
    else:
        d.gaps.append(f"Only one real protocol ({code(best)}) qualified: no protocol comparison.")
        d.reasons.insert(
            1,
            f"End-to-end p99 latency {p99} ms; acknowledgement (publish) p99 "
            f"{measure(rows, PUBLISH_P99, digits=2)} ms.",
        )
    if d.serialization_runner_up:
        r = ok[(ok["serialization"] == d.serialization_runner_up) & (ok["batch"] == d.batch)]
        d.runner_up.append(
            f"Serialization runner-up: {code(d.serialization_runner_up)} ({measure(r, BYTES)} B per reading)."
        )


def _codec_latency(d: Decision, ok: Any) -> None:
    """The codecs' latency compared where both ran: on the chosen protocol, else on shared variants."""
    if not (d.serialization and d.serialization_runner_up):
        return
    at = ok[ok["batch"] == d.batch]
    best, second = at[at["serialization"] == d.serialization], at[at["serialization"] == d.serialization_runner_up]
    shared = set(best["variant"]) & set(second["variant"])
    if d.protocol in shared:
        shared = {d.protocol}
    best, second = best[best["variant"].isin(shared)], second[second["variant"].isin(shared)]
    if best[P99].notna().sum() == 0 or second[P99].notna().sum() == 0:
        return
    where = code(str(d.protocol)) if shared == {d.protocol} else "the same transports"
    latency = compare_repeats(list(best[P99]), list(second[P99]))
    d.reasons.append(
        f"On {where}, {code(d.serialization)}'s end-to-end p99 latency is {measure(best, P99, digits=2)} ms "
        f"against {measure(second, P99, digits=2)} ms for {code(d.serialization_runner_up)} ({verdict(latency)})"
        + (": at this rate the codec does not limit the path." if latency.significant is False else ".")
    )
