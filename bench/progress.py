"""What the user sees while a matrix runs: a bar for the cells, one for the events."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from iotbench.model.results import CellResult
from iotbench.model.spec import Cell
from iotbench.model.sustain import RULE, shortfall

__all__ = ["RichProgress", "search_table", "summary_table"]


class RichProgress:
    def __init__(self, cells: int | None, console: Console | None = None) -> None:
        """``cells``: the cell runs to come (None when unknown: a rate search decides its trials)."""
        self.console = console or Console(stderr=True)
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._cells = self._bar.add_task("cells", total=cells)
        self._events = self._bar.add_task("events stored", total=1, visible=False)

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def start_cell(self, cell: Cell, expected_events: int) -> None:
        self._bar.reset(
            self._events, total=max(1, expected_events), visible=True, description=f"{cell.id} r{cell.repeat}"
        )

    def update(self, sent: int, stored: int) -> None:
        self._bar.update(self._events, completed=stored)

    def end_cell(self, result: CellResult) -> None:
        self._bar.advance(self._cells)
        if result.status != "ok":
            self.console.print(f"[red]cell {result.cell} failed:[/red] {result.error}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def summary_table(results: Sequence[CellResult]) -> Table:
    table = Table(title="iotbench results", caption=RULE)
    for name in (
        "cell",
        "status",
        "offered/s",
        "sent",
        "stored",
        "lost",
        "dup",
        "rejected",
        "events/s",
        "B/event",
        "send delay p99 ms",
        "e2e p99 ms",
        "kept up",
    ):
        table.add_column(name, justify="left" if name in ("cell", "status", "kept up") else "right")
    for r in results:
        short = shortfall(r.to_dict())
        table.add_row(
            escape(r.cell),  # "mqtt[qos=1]" is not markup
            r.status,
            f"{r.target_eps:,.0f}",
            f"{r.events_sent:,}",
            f"{r.events_stored:,}",
            f"{r.events_lost:,}",
            f"{r.events_duplicated:,}",
            f"{r.events_rejected:,}",
            f"{r.throughput_eps:,.0f}",
            _ms(r.payload_bytes.get("mean")),
            _ms(r.latency_ms["send_delay"].get("p99")),
            _ms(r.latency_ms["e2e_received"].get("p99")),
            "yes" if short is None else f"no: {short}",
        )
    return table


def _eps(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def search_table(results: Sequence[CellResult]) -> Table | None:
    """One row per rate search (``rate = "max"``): the highest rate kept up and the first that was not; None without."""
    outcomes = [r for r in results if r.search and "outcome" in r.search]
    if not outcomes:
        return None
    table = Table(title="highest sustained rate per cell (rate = max)", caption=RULE)
    for name in ("cell", "repeat", "sustained events/s", "first not sustained", "why not", "trials", "end"):
        table.add_column(name, justify="right" if name in ("repeat", "sustained events/s", "trials") else "left")
    for r in outcomes:
        assert r.search is not None
        o = r.search["outcome"]
        table.add_row(
            escape(r.search["cell"]),
            str(r.repeat),
            _eps(o["sustained_eps"]),
            _eps(o["not_sustained_eps"]),
            o["shortfall"] or "-",
            str(o["trials"]),
            o["end"],
        )
    return table
