"""The highest rate a cell sustains: trials at rising offered rates, judged by the one kept-up rule.

One loop (``Trials``) serves two searches. ``climb`` offers a given ascending list of rates until
one is not kept up (the studies' fixed ladders, ``iotbench.studies.ratesearch``). ``ramp`` -- what
a spec's ``rate = "max"`` runs for every cell (``search_cell``, called by ``run_matrix``) -- starts
at the cell's contract rate (or ``[rate_search] start_eps``), multiplies it by ``factor`` until a
rate is not kept up (divides while not even the start is), then tries the geometric middle of the
highest rate kept up and the lowest not, until the two are within ``precision``:

    1,667 ok -> 3,330 ok -> 6,670 ok -> 13,300 no -> 9,420 ok -> 11,200 ok -> 12,200 no: 11,200 / 12,200

The rate changes by the interval, not the devices: a trial is the cell's own fleet (its devices,
their ids, the keys and topics a broker sees, the ledgers' size) reporting more often
(``Cell.at_rate``). More devices at the cell's 60 s interval would need 60 devices per event/s --
18 million for the in-process ceiling, ~18 GB at ~1 KB each and a schedule whose layout alone
takes seconds, so a trial would measure the fleet simulation, not the ingest path (which sees
events per second, whichever device sent them).

Every trial is a whole cell run, written to results.jsonl with ``search`` = {"id", "cell",
"step"}; the search's last trial also holds its ``outcome`` (``Outcome.to_dict``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iotbench.model.results import CellResult
from iotbench.model.spec import Cell, RateSearch, Spec
from iotbench.model.sustain import shortfall

__all__ = ["Outcome", "Trials", "climb", "ramp", "search_cell"]

Trial = Callable[[float], CellResult]  # run the cell at this offered rate (events/s)


@dataclass(frozen=True)
class Outcome:
    """What a search found: the highest rate kept up, the first rate above it that was not and why.

    ``end`` says why the search stopped: ``bracketed`` (the two are within the precision),
    ``top`` (the highest rate it may offer was kept up: ``not_sustained_eps`` is None),
    ``bottom`` (not even the lowest was: ``sustained_eps`` is None), ``failed`` (a trial failed
    before sending anything -- no server, no endpoint: no rate would run).
    """

    sustained_eps: float | None
    not_sustained_eps: float | None
    shortfall: str | None
    trials: int
    end: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Trials:
    """The trials of one search so far: the highest rate kept up and the lowest one above it that was not."""

    def __init__(self, trial: Trial, budget: float = math.inf) -> None:
        self._trial, self._budget = trial, budget
        self.results: list[CellResult] = []
        self.best: float | None = None
        self.failed: float | None = None
        self.why: str | None = None

    def offer(self, rate: float) -> bool:
        """Run a trial at ``rate``; True when it kept up."""
        result = self._trial(rate)
        self.results.append(result)
        why = shortfall(result.to_dict())
        if why is None:
            self.best = rate if self.best is None else max(self.best, rate)
        elif self.failed is None or rate < self.failed:
            self.failed, self.why = rate, f"{why}: {result.error}" if result.status != "ok" else why
        return why is None

    @property
    def room(self) -> bool:
        return len(self.results) < self._budget

    @property
    def cannot_run(self) -> bool:
        """The last trial failed before a reading was sent: a missing server fails every rate."""
        last = self.results[-1] if self.results else None
        return last is not None and last.status != "ok" and last.events_sent == 0


def climb(trial: Trial, rates: Iterable[float]) -> tuple[float | None, list[CellResult]]:
    """Offer each rate (ascending) until one is not kept up: (the highest kept up or None, every result)."""
    trials = Trials(trial)
    for rate in sorted(rates):
        if not trials.offer(rate):
            break
    return trials.best, trials.results


def _rounded(rate: float) -> float:
    """3 significant digits: 13,300 events/s in a table, not 13,333.333."""
    return float(f"{rate:.3g}")


def ramp(trial: Trial, search: RateSearch, cell: Cell) -> Outcome:
    """Search ``cell``'s highest sustained rate within ``search``'s bounds (see the module's docstring)."""
    start, low, top = search.bounds(cell)
    trials = Trials(trial, budget=search.most_trials(cell))
    rate = start
    if trials.offer(start):
        while trials.failed is None and rate < top and trials.room:
            rate = min(top, max(_rounded(rate * search.factor), math.nextafter(rate, math.inf)))
            trials.offer(rate)
    else:
        while trials.best is None and rate > low and trials.room and not trials.cannot_run:
            rate = max(low, min(_rounded(rate / search.factor), math.nextafter(rate, 0.0)))
            trials.offer(rate)
    while trials.best and trials.failed and trials.failed / trials.best > 1 + search.precision and trials.room:
        middle = math.sqrt(trials.best * trials.failed)
        rounded = _rounded(middle)
        trials.offer(rounded if trials.best < rounded < trials.failed else middle)
    if trials.cannot_run and trials.best is None:
        end = "failed"
    else:
        end = "bottom" if trials.best is None else "top" if trials.failed is None else "bracketed"
    return Outcome(trials.best, trials.failed, trials.why, len(trials.results), end)


def search_cell(
    spec: Spec,
    cell: Cell,
    index: int,
    folder: Path,
    run: Callable[[Cell, Path], CellResult],
    record: Callable[[CellResult], None],
) -> list[CellResult]:
    """Ramp ``cell`` (``spec.rate_search``): ``run`` runs one trial cell in its folder (``folder``
    with ``-sNN``), ``record`` writes a result line. A trial is recorded as soon as the search has
    decided what comes next -- before the next trial starts, so a crash keeps every finished one;
    the last is recorded with the search's outcome."""
    done: list[CellResult] = []
    pending: list[CellResult] = []

    def trial(rate: float) -> CellResult:
        if pending:
            record(pending[0])
            done.append(pending.pop())
        step = len(done) + 1
        result = run(cell.at_rate(rate), folder.with_name(f"{folder.name}-s{step:02d}"))
        pending.append(dataclasses.replace(result, search={"id": index, "cell": cell.id, "step": step}))
        return result

    outcome = ramp(trial, spec.rate_search, cell)
    last = pending.pop()
    last = dataclasses.replace(last, search={**(last.search or {}), "outcome": outcome.to_dict()})
    record(last)
    return [*done, last]
