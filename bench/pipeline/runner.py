"""The matrix runner: every cell of a spec, each in isolation, measured the same way.

A cell is: start the transport's servers, start the receiving side (its own process:
receiver, consumer, fresh cold-store folder) and the sending side (its own process: fleet,
publisher, senders), let the fleet's open-loop schedule run for warm-up + duration, drain,
stop, reconcile per (device, seq) from the two sides' snapshots, and write one result line.
A cell that fails (server down, endpoint silent) is recorded with its reason and
the matrix goes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import multiprocessing
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
from iotbench.pipeline.accounting import SeqLedger, reconcile, stored_among
from iotbench.pipeline.costs import cpu_us_per_event, datagram_wire_per_event, peak_rss_mb, wire_per_event
from iotbench.pipeline.deploy import Deployment
from iotbench.pipeline.metrics import Latency
from iotbench.pipeline.ramp import search_cell
from iotbench.pipeline.series import timeseries
from iotbench.pipeline.sides import CLOSE_TIMEOUT_S, LATE_S, QUIET_S, Drain, Go, SideTask, receiving_side, sending_side
from iotbench.pipeline.snapshots import ReceiveSide, SendSide, ledger_to_wire, merge_sends
from iotbench.pipeline.usage import ServerMeter
from iotbench.transports import get_transport
from iotbench.transports.base import Load, TransportError

__all__ = ["run_cell", "run_matrix", "Progress"]

# the schedule starts this long after both sides said ready: the "go" reaches them and the
# sending side lays out its schedule (100,000 devices: ~60 ms) before the first reading is due
LEAD_S = 0.5
START_TIMEOUT_S = 120.0  # a server start (RabbitMQ takes ~5 s) or a connect, bounded
# forkserver: a side starts in ~10 ms from a clean, preloaded process (spawn: ~0.4 s a side;
# fork: unsafe beside the runner's threads)
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["iotbench.pipeline.sides"])
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

    The servers start here; the receiving side and the sending side run in processes of their
    own (``iotbench.pipeline.sides``). ``run_id`` prefixes the device ids (a new one when not
    given): no two runs share a device id.
    """
    run_id = run_id or new_run_id()
    folder = Path(folder).resolve()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    started_at = datetime.now(UTC).isoformat()
    t0 = time.perf_counter()
    cell_run = _CellRun(spec, cell, folder, progress, run_id)
    error: str | None = None
    try:
        await cell_run.run()
    except TimeoutError as exc:
        error = str(exc) or f"server start or connect did not finish within {START_TIMEOUT_S:g} s"
    except (TransportError, OSError, ConnectionError) as exc:
        error = str(exc)
    finally:
        await cell_run.close()
    if error is not None and not error.startswith(cell.transport):
        error = f"{cell.transport}: {error}"
    return _result(
        spec, cell, folder, cell_run.sending(), cell_run.receiving(), started_at, time.perf_counter() - t0, error,
        cell_run.counters(), run_id, cell_run.servers,
    )  # fmt: skip


class _Side:
    """One side's process and its pipe, seen from the runner."""

    def __init__(self, name: str, target: Any, task: SideTask) -> None:
        self.name = name
        self.conn, child = _CONTEXT.Pipe()
        self.process = _CONTEXT.Process(target=target, args=(task, child), name=f"iotbench-{name}", daemon=True)
        self.process.start()
        child.close()
        self.events = 0
        self.done: Any = None
        self.finished = False

    def send(self, kind: str, body: Any = None) -> None:
        try:
            self.conn.send((kind, body))
        except (OSError, ValueError):
            pass  # the side is gone: its end shows in poll()

    def poll(self) -> None:
        """Take what the side said; a failure or a side that died raises TransportError."""
        try:
            while not self.finished and self.conn.poll():
                kind, body = self.conn.recv()
                if kind == "progress":
                    self.events = body
                elif kind == "ready":
                    self.ready = True
                elif kind == "failed":
                    self.finished = True
                    raise TransportError(body)
                elif kind == "done":
                    self.finished, self.done = True, body
        except (EOFError, OSError):
            self.finished = True
            self.process.join(1.0)
            raise TransportError(f"the {self.name} side died (exit code {self.process.exitcode})") from None

    async def wait(self, attribute: str, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not getattr(self, attribute, None) and not self.finished:
            self.poll()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {self.name} side: {what} did not finish within {timeout_s:g} s")
            await asyncio.sleep(0.01)

    def end(self) -> None:
        self.conn.close()
        self.process.join(CLOSE_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5.0)


class _CellRun:
    """One cell: its servers here, its two sides in their own processes."""

    def __init__(self, spec: Spec, cell: Cell, folder: Path, progress: Progress | None, run_id: str) -> None:
        self.spec, self.cell, self.folder, self.progress, self.run_id = spec, cell, folder, progress, run_id
        self.deployment: Deployment | None = None
        self.receiver: _Side | None = None
        self.senders: list[_Side] = []
        self.servers = ServerMeter()

    async def run(self) -> None:
        spec, cell = self.spec, self.cell
        transport_class = get_transport(cell.transport)
        try:
            transport = transport_class(**dict(cell.transport_options))
        except (TypeError, ValueError) as exc:  # a bad option value fails this cell, not the matrix
            raise TransportError(f"bad options {dict(cell.transport_options)}: {exc}") from None
        load = _load(cell, get_codec(cell.codec), get_compression(cell.compression), spec.seed + cell.repeat)
        transport.plan(load)
        self.deployment = Deployment(transport, self.folder / "server")
        async with asyncio.timeout(START_TIMEOUT_S):
            endpoints = await self.deployment.start_servers()
        self.servers.pids = {name: pids for name, pids in self.deployment.server_pids().items() if pids}
        task = SideTask(spec, cell, str(self.folder), f"{transport_class.__module__}:{transport_class.__qualname__}",
                        endpoints, load, self.run_id, _max_seq(spec, cell))  # fmt: skip
        # the receiver first: a consumer is there before anything is sent
        self.receiver = _Side("receiving", receiving_side, task)
        await self.receiver.wait("ready", START_TIMEOUT_S, "connecting")
        shards = spec.sending_processes
        self.senders = [
            _Side(
                "sending" if shards == 1 else f"sending {p + 1} of {shards}",
                sending_side,
                dataclasses.replace(task, shard=p),
            )
            for p in range(shards)
        ]
        for side in self.senders:
            await side.wait("ready", START_TIMEOUT_S, "connecting")
        start = time.time() + LEAD_S
        go = Go(start, start + spec.warmup_s, start + spec.warmup_s + spec.duration_s)
        self.servers.window = (go.window_start, go.window_end)
        for side in (self.receiver, *self.senders):
            side.send("go", go)
        if self.progress:
            self.progress.start_cell(cell, int(cell.target_eps * (spec.warmup_s + spec.duration_s)))
        await self._until_sent(go)
        sending = self.sending()
        assert sending is not None
        drain = Drain(ledger_to_wire(sending.sent), ledger_to_wire(sending.failed), sending.events_acked,
                      spec.drain_timeout_s)  # fmt: skip
        self.receiver.send("drain", drain)
        bound = spec.drain_timeout_s + QUIET_S + LATE_S + CLOSE_TIMEOUT_S + 30.0
        await self.receiver.wait("done", bound, "draining")
        self.servers.read_peaks()
        self._report()

    async def _until_sent(self, go: Go) -> None:
        """Until every sending side is done; a receiving side that fails calls the senders off."""
        assert self.receiver is not None
        # the schedule, then every send bounded by send_timeout_s, then closing: generous, but bounded
        deadline = go.window_end + self.spec.send_timeout_s + CLOSE_TIMEOUT_S + 60.0
        while not all(side.finished for side in self.senders):
            try:
                self.receiver.poll()
            except TransportError:
                for side in self.senders:
                    side.send("stop")
                raise
            for side in self.senders:
                side.poll()
            self.servers.tick(time.time())
            self._report()
            if time.time() > deadline:
                raise TimeoutError(f"the sending side did not finish within {deadline - go.start:.0f} s")
            await asyncio.sleep(0.05)

    def _report(self) -> None:
        if self.progress and self.receiver is not None:
            self.progress.update(sum(side.events for side in self.senders), self.receiver.events)

    def sending(self) -> SendSide | None:
        sides = [SendSide.from_wire(side.done["side"]) for side in self.senders if side.done]
        return merge_sends(sides) if sides and len(sides) == len(self.senders) else None

    def receiving(self) -> ReceiveSide | None:
        done = self.receiver.done if self.receiver is not None else None
        return ReceiveSide.from_wire(done["side"]) if done else None

    def counters(self) -> dict[str, int]:
        """The sides' transport counters (counts add; a limit is the same on both) and the servers'."""
        out: dict[str, int] = {}
        for side in (self.receiver, *self.senders):
            if side is not None and side.done:
                for name, value in side.done["counters"].items():
                    out[name] = value if name.startswith("limit_") else out.get(name, 0) + value
        if self.deployment is not None:
            out.update(self.deployment.server_counters())
        return out

    async def close(self) -> None:
        """Stop the sides (bounded), then the servers; the dead letters of both sides in one file."""
        for side in (*self.senders, self.receiver):
            if side is not None:
                if not side.finished:
                    side.send("stop")
                await asyncio.to_thread(side.end)
        if self.deployment is not None:
            await _bounded(self.deployment.stop_servers())
        _merge_dead_letters(self.folder)
        sending = self.sending()
        if sending is not None:  # what was sent, for an independent check of the cold store
            (self.folder / "sent-ledger.json.gz").write_bytes(
                gzip.compress(msgspec.json.encode(sending.sent.to_ranges()), 1)
            )


def _merge_dead_letters(folder: Path) -> None:
    """The sending processes' dead letters (failed sends) appended to the cell's dead-letter file."""
    parts = sorted(folder.glob("dead-letter.sending-*.jsonl"), key=lambda p: int(p.stem.rpartition("-")[2]))
    for part in parts:
        with open(folder / "dead-letter.jsonl", "ab") as out:
            out.write(part.read_bytes())
        part.unlink()


def _load(cell: Cell, codec: Any, compression: Any, seed: int) -> Load:
    """The cell's offered load; bytes per event from one encoded sample batch, as it will be sent."""
    rng = random.Random(seed)
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


NO_SIZES: dict[str, float | None] = {"mean": None, "min": None, "max": None}
SEND_LATENCIES = ("send_delay", "publish", "publish_failed")
RECEIVE_LATENCIES = ("e2e_received", "e2e_stored")


def _result(
    spec: Spec,
    cell: Cell,
    folder: Path,
    send: SendSide | None,
    receive: ReceiveSide | None,
    started_at: str,
    elapsed: float,
    error: str | None,
    transport_counters: dict[str, int],
    run_id: str,
    servers: ServerMeter,
) -> CellResult:
    """One result line from the two sides' snapshots (a side without one failed before it ended)."""
    receive = receive or ReceiveSide(SeqLedger(), 0, 0, 0.0, {k: Latency() for k in RECEIVE_LATENCIES}, 0, {})
    tally = reconcile(send.sent if send else SeqLedger(), receive.ledger)
    reasons = dict(receive.dead_letter_reasons)
    for reason, n in (send.dead_letter_reasons if send else {}).items():
        reasons[reason] = reasons.get(reason, 0) + n
    dead_letters = receive.dead_letters + (send.dead_letters if send else 0)
    histograms = {**(send.latency if send else {k: Latency() for k in SEND_LATENCIES}), **receive.latency}
    out_dir = folder.parent.parent
    send_usage, receive_usage = (send.usage if send else {}), receive.usage
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
        dead_letter=str((folder / "dead-letter.jsonl").relative_to(out_dir)) if dead_letters else None,
        started_at=started_at,
        elapsed_s=round(elapsed, 3),
        error=error,
        error_samples=reasons,
        histograms={k: h.encoded() for k, h in histograms.items()},
        transport_counters=transport_counters,
        events_failed_stored=stored_among(send.failed, receive.ledger) if send else 0,
        events_late=receive.events_late,
        latency_clipped={k: h.clipped_count for k, h in histograms.items() if h.clipped_count},
        run_id=run_id,
        wire=(
            wire_per_event(send_usage, send.events_sent)
            or datagram_wire_per_event(transport_counters, send.payload_bytes["mean"], send.events_sent)
        )
        if send
        else None,  # fmt: skip
        cpu_us_per_event=cpu_us_per_event(send_usage, receive_usage, servers.cpu_s()),
        peak_rss_mb=peak_rss_mb(send_usage, receive_usage, servers.peaks),
        timeseries=timeseries(send.series if send else {}, receive.series, spec.warmup_s, spec.duration_s),
    )


def run_matrix(spec: Spec, out_dir: Path, progress: Progress | None = None, spec_source: str = "") -> list[CellResult]:
    """Run every cell of ``spec`` (with ``rate = "max"``, a ramp of trials each); writes ``run.json``
    and appends to ``results.jsonl``."""
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
    results: list[CellResult] = []

    def record(result: CellResult) -> None:
        append_result(results_path, result)
        results.append(result)
        if progress:
            progress.end_cell(result)

    def run_one(cell: Cell, folder: Path) -> CellResult:
        return asyncio.run(run_cell(spec, cell, folder, progress, run_id))

    for index, cell in enumerate(cells):
        if spec.rate == "max":  # a ramp of trials, each a cell run of its own (iotbench.pipeline.ramp)
            search_cell(spec, cell, index, _cell_folder(out_dir, index, cell), run_one, record)
        else:
            record(run_one(cell, _cell_folder(out_dir, index, cell)))
    return results
