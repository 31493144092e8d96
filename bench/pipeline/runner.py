"""The matrix runner: every cell of a spec, each in isolation, measured the same way.

A cell is: start the transport's server, open the consumer (fresh cold-store
folder), open the senders, drive the fleet's open-loop schedule for warm-up +
duration, drain, stop, reconcile per (device, seq), and write one result line.
A cell that fails (server down, endpoint silent) is recorded with its reason and
the matrix goes on.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import random
import secrets
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import msgspec

from iotbench.codecs import get_codec
from iotbench.compression import get_compression
from iotbench.machine import library_versions, machine_info
from iotbench.model.results import CellResult, append_result
from iotbench.model.spec import Cell, Spec
from iotbench.model.telemetry import DeviceState
from iotbench.pipeline.accounting import SeqLedger, reconcile, stored_among, unstored
from iotbench.pipeline.coldstore import JsonLinesColdStore
from iotbench.pipeline.consumer import Consumer, Window
from iotbench.pipeline.deadletter import DeadLetter
from iotbench.pipeline.deploy import Deployment
from iotbench.pipeline.fleet import Fleet, FleetConfig
from iotbench.pipeline.metrics import Latency
from iotbench.pipeline.publisher import Publisher
from iotbench.pipeline.snapshots import ReceiveSide, SendSide
from iotbench.transports import get_transport
from iotbench.transports.base import Load, Receiver, TransportError

__all__ = ["run_cell", "run_matrix", "Progress"]

LEAD_S = 0.2  # the schedule starts this long after set-up, so the first readings are not late
START_TIMEOUT_S = 120.0  # a server start (RabbitMQ takes ~5 s) or a connect, bounded
CLOSE_TIMEOUT_S = 10.0
QUIET_S = 5.0  # stop draining once nothing has arrived for this long
LATE_S = 2.0  # after a drain that gave up: arrivals this long after it are counted late, not lost
EXACT_CHECK_S = 0.5  # the drain's exact (device, seq) check runs at most this often
DUE_CHUNK = 2000  # readings taken per step when behind, so the consumer is never starved
RUN_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


class Progress(Protocol):
    def start_cell(self, cell: Cell, expected_events: int) -> None: ...

    def update(self, sent: int, stored: int) -> None: ...

    def end_cell(self, result: CellResult) -> None: ...


def _cell_folder(out_dir: Path, index: int, cell: Cell) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_.@=" else "_" for c in cell.id)
    return out_dir / "cells" / f"{index:03d}-{safe}-r{cell.repeat}"


def new_run_id() -> str:
    """Four characters that make a run's device ids its own (``k3f9``)."""
    return "".join(secrets.choice(RUN_ID_ALPHABET) for _ in range(4))


def _max_seq(spec: Spec, cell: Cell) -> int:
    """The highest seq a device can send in the cell: readings beyond it are forged or from another run."""
    return int((spec.warmup_s + spec.duration_s) / cell.interval_s) + 2


async def run_cell(
    spec: Spec, cell: Cell, folder: Path, progress: Progress | None = None, run_id: str = ""
) -> CellResult:
    """Run one cell; everything it writes goes under ``folder`` (removed first).

    ``run_id`` prefixes the device ids (a new one when not given): no two runs share a device id.
    """
    run_id = run_id or new_run_id()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    started_at = datetime.now(UTC).isoformat()
    t0 = time.perf_counter()
    codec, compression = get_codec(cell.codec), get_compression(cell.compression)
    transport = None
    window = Window()
    dead_letter = DeadLetter(folder / "dead-letter.jsonl")
    store = JsonLinesColdStore(
        folder / "cold-store", roll_bytes=spec.cold_store.roll_bytes, roll_s=spec.cold_store.roll_s
    )
    consumer = Consumer(
        codec,
        compression,
        store,
        dead_letter,
        batched=cell.batch > 1,
        window=window,
        checkpoint_path=folder / "checkpoint.json",
        max_seq=_max_seq(spec, cell),
    )
    fleet_config = FleetConfig(
        cell.devices, cell.interval_s, spec.jitter, spec.start_spread_s, spec.seed + cell.repeat, id_prefix=f"{run_id}-"
    )
    publisher: Publisher | None = None
    deployment: Deployment | None = None
    fleet: Fleet | None = None
    receiver = None
    senders: list = []
    error: str | None = None
    try:
        try:
            transport = get_transport(cell.transport)(**dict(cell.transport_options))
        except (TypeError, ValueError) as exc:  # a bad option value fails this cell, not the matrix
            raise TransportError(f"bad options {dict(cell.transport_options)}: {exc}") from None
        transport.plan(_load(cell, codec, compression, fleet_config))
        deployment = Deployment(transport, folder / "server")
        async with asyncio.timeout(START_TIMEOUT_S):
            await deployment.start()
            receiver = await transport.open_receiver(consumer.deliver)
            consumer.checkpointers.append(receiver)  # its checkpoints (if any) follow the cold store
            senders = [await transport.open_sender(i) for i in range(cell.connections)]
        publisher = Publisher(
            senders,
            codec,
            compression,
            batch=cell.batch,
            linger_s=spec.linger_ms / 1000.0,
            max_inflight=spec.max_inflight,
            send_timeout_s=spec.send_timeout_s,
            window=window,
            dead_letter=dead_letter,
        )
        fleet = Fleet(fleet_config)
        # The fleet's 100,000 device objects live for the whole cell: keep them out of
        # the collector's full passes, which would otherwise stall the schedule.
        gc.collect()
        gc.freeze()
        start = time.time() + LEAD_S
        window.start, window.end = start + spec.warmup_s, start + spec.warmup_s + spec.duration_s
        fleet.schedule(start=start, end=window.end)
        if progress:
            progress.start_cell(cell, int(fleet_config.target_eps * (spec.warmup_s + spec.duration_s)))
        await _drive(fleet, publisher, consumer, receiver, progress)
        await _drain(publisher, consumer, receiver, spec.drain_timeout_s, progress)
    except TimeoutError:
        error = f"{cell.transport}: server start or connect did not finish within {START_TIMEOUT_S:g} s"
    except (TransportError, OSError, ConnectionError) as exc:
        error = str(exc) if str(exc).startswith(f"{cell.transport}") else f"{cell.transport}: {exc}"
    finally:
        gc.unfreeze()
        for closable in [*senders, receiver]:
            if closable is not None:
                await _bounded(closable.close())
        if deployment is not None:
            await _bounded(deployment.stop())
        consumer.close()
        if publisher is not None:  # what was sent, for an independent check of the cold store
            (folder / "sent-ledger.json.gz").write_bytes(
                gzip.compress(msgspec.json.encode(publisher.sent.to_ranges()), 1)
            )
    sending = publisher.snapshot(fleet.scheduled if fleet else 0) if publisher else None
    return _result(
        spec,
        cell,
        folder,
        sending,
        consumer.snapshot(),
        started_at,
        time.perf_counter() - t0,
        error,
        deployment.counters() if deployment is not None else {},
        run_id,
    )


def _load(cell: Cell, codec: Any, compression: Any, fleet_config: FleetConfig) -> Load:
    """The cell's offered load; bytes per event from one encoded sample batch, as it will be sent."""
    rng = random.Random(fleet_config.seed)
    sample = [DeviceState(i, rng).next(time.time()) for i in range(min(cell.batch, 100))]
    raw = codec.encode(sample[0]) if cell.batch == 1 else codec.encode_batch(sample)
    return Load(
        events_per_s=cell.target_eps, batch=cell.batch, bytes_per_event=len(compression.compress(raw)) / len(sample)
    )


async def _bounded(coro: object) -> None:
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await coro  # type: ignore[misc]
    except Exception:  # noqa: BLE001 - closing is best effort; the cell's figures are already taken
        pass


def _check(receiver: Receiver) -> None:
    """A receiver whose stream broke, whose task died or whose consumer raised fails the cell."""
    reason = receiver.failure()
    if reason is not None:
        raise TransportError(f"receiver failed: {reason}")


async def _drive(
    fleet: Fleet, publisher: Publisher, consumer: Consumer, receiver: Receiver, progress: Progress | None
) -> None:
    """The open loop: at each wake, everything due goes out; nothing waits for acks."""
    next_report = 0.0
    offer = publisher.offer
    while True:
        now = time.time()
        _check(receiver)
        due = fleet.due(now, DUE_CHUNK)
        for intended, index, reading in due:
            offer(intended, index, reading)
        publisher.flush_due(now)
        consumer.tick(now)
        if progress and now >= next_report:
            progress.update(publisher.events_sent, consumer.ledger_events())
            next_report = now + 0.25
        upcoming = fleet.next_due()
        if upcoming is None:
            break
        await publisher.wait_for_capacity()
        if len(due) == DUE_CHUNK:
            await asyncio.sleep(0)  # behind schedule: let sends and the consumer run, then go on
            continue
        wake = min(upcoming, publisher.next_deadline(), now + 0.1)
        await asyncio.sleep(max(0.0, wake - time.time()))
    await publisher.finish()


async def _drain(
    publisher: Publisher, consumer: Consumer, receiver: Receiver, timeout_s: float, progress: Progress | None
) -> None:
    """Wait until every acknowledged event has been stored, or nothing arrives for QUIET_S,
    or ``timeout_s``; then, if some are still missing, listen LATE_S more: what arrives
    then is counted late, apart from lost.

    It waits on (device, seq), not on payload counts: a duplicate must not stand in for a
    missing event. The exact check runs only once the cheap count says it could pass.
    """
    deadline = time.monotonic() + timeout_s
    last_seen, last_change = consumer.payloads, time.monotonic()
    next_exact = 0.0
    missing = None
    while time.monotonic() < deadline:
        _check(receiver)
        now = time.monotonic()
        if consumer.distinct >= publisher.events_acked and now >= next_exact:
            missing = unstored(publisher.sent, consumer.ledger, skip=publisher.failed)
            if missing == 0:
                break
            next_exact = now + EXACT_CHECK_S
        if consumer.payloads != last_seen:
            last_seen, last_change = consumer.payloads, now
        elif now - last_change > QUIET_S:
            break
        await asyncio.sleep(0.01)
        consumer.tick(time.time())
    if missing != 0 and unstored(publisher.sent, consumer.ledger, skip=publisher.failed):
        consumer.late_after = time.time()
        late_deadline = time.monotonic() + LATE_S
        while time.monotonic() < late_deadline:
            await asyncio.sleep(0.05)
            consumer.tick(time.time())
        _check(receiver)
    if progress:
        progress.update(publisher.events_sent, consumer.ledger_events())


NO_SIZES: dict[str, float | None] = {"mean": None, "min": None, "max": None}
SEND_LATENCIES = ("send_delay", "publish", "publish_failed")


def _result(
    spec: Spec,
    cell: Cell,
    folder: Path,
    send: SendSide | None,
    receive: ReceiveSide,
    started_at: str,
    elapsed: float,
    error: str | None,
    transport_counters: dict[str, int],
    run_id: str,
) -> CellResult:
    """One result line from the two sides' snapshots (no sending side: the cell failed before it had one)."""
    tally = reconcile(send.sent if send else SeqLedger(), receive.ledger)
    histograms = {**(send.latency if send else {k: Latency() for k in SEND_LATENCIES}), **receive.latency}
    out_dir = folder.parent.parent
    return CellResult(
        cell=cell.id,
        codec=cell.codec,
        transport=cell.transport,
        transport_options=dict(cell.transport_options),
        batch=cell.batch,
        compression=cell.compression,
        connections=cell.connections,
        devices=cell.devices,
        interval_s=cell.interval_s,
        duration_s=spec.duration_s,
        warmup_s=spec.warmup_s,
        repeat=cell.repeat,
        target_eps=round(cell.target_eps, 3),
        status="failed" if error else "ok",
        events_scheduled=send.scheduled if send else 0,
        events_sent=send.events_sent if send else 0,
        events_acked=send.events_acked if send else 0,
        events_failed=send.events_failed if send else 0,
        events_stored=tally.stored,
        events_lost=tally.lost,
        events_duplicated=tally.duplicated,
        events_rejected=receive.events_rejected,
        events_unexpected=tally.unexpected,
        sends=send.sends if send else 0,
        throughput_eps=round(receive.throughput_eps, 1) if send else 0.0,
        latency_ms={k: h.summary_ms() for k, h in histograms.items()},
        payload_bytes=send.payload_bytes if send else NO_SIZES,
        send_bytes=send.send_bytes if send else NO_SIZES,
        cold_store=str((folder / "cold-store").relative_to(out_dir)),
        dead_letter=str((folder / "dead-letter.jsonl").relative_to(out_dir)) if receive.dead_letters else None,
        started_at=started_at,
        elapsed_s=round(elapsed, 3),
        error=error,
        error_samples=receive.dead_letter_reasons,
        histograms={k: h.encoded() for k, h in histograms.items()},
        transport_counters=transport_counters,
        events_failed_stored=stored_among(send.failed, receive.ledger) if send else 0,
        events_late=receive.events_late,
        latency_clipped={k: h.clipped_count for k, h in histograms.items() if h.clipped_count},
        run_id=run_id,
    )


def run_matrix(spec: Spec, out_dir: Path, progress: Progress | None = None, spec_source: str = "") -> list[CellResult]:
    """Run every cell of ``spec``; writes ``run.json`` and appends to ``results.jsonl``."""
    out_dir = Path(out_dir).resolve()  # servers get paths under it and run in their own folders
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "results.jsonl"
    results_path.unlink(missing_ok=True)
    cells = spec.cells()
    run_id = new_run_id()
    run = {
        "schema_version": 1,
        "run_id": run_id,
        "started_at": datetime.now(UTC).isoformat(),
        "spec": spec.as_dict(),
        "spec_source": spec_source,
        "cells": [c.id for c in cells],
        "machine": machine_info(),
        "libraries": library_versions(
            codecs={c.codec for c in cells},
            transports={c.transport for c in cells},
            compressions={c.compression for c in cells},
        ),  # what this run used
    }
    (out_dir / "run.json").write_text(json.dumps(run, indent=2, default=str))
    results = []
    for index, cell in enumerate(cells):
        result = asyncio.run(run_cell(spec, cell, _cell_folder(out_dir, index, cell), progress, run_id))
        append_result(results_path, result)
        results.append(result)
        if progress:
            progress.end_cell(result)
    return results
