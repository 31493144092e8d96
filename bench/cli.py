"""The ``iotbench`` command: run a matrix, list plugins.

Usage and spec errors print one line and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

__all__ = ["main"]

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iotbench", description="Protocol and serialization benchmarks for IoT ingest."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a spec's matrix (the built-in default when no SPEC is given)")
    run.add_argument("spec", nargs="?", help="a TOML spec file")
    run.add_argument("--out", help="results folder (default: reports/run-YYYYmmdd-HHMMSS)")
    run.add_argument("--no-report", action="store_true", help="skip the HTML report at the end")
    sub.add_parser(
        "list",
        help="list codecs, compressions and transports (each option: type, default, range), "
        "and whether they are usable here",
    )
    codecs = sub.add_parser("codecs", help="codec table: bytes per event and encode/decode microseconds")
    codecs.add_argument("names", nargs="*", help="codecs to show (default: every registered codec)")
    codecs.add_argument("--compression", default="zstd", help="compression for the compressed-bytes columns")
    codecs.add_argument("--evolution", action="store_true", help="the schema-evolution table (v1 <-> v2 readings)")
    codecs.add_argument("--overhead", action="store_true", help="plugin speed against a direct library call")
    codecs.add_argument("--json", action="store_true", help="one JSON object per row instead of a table")
    report = sub.add_parser("report", help="write DIR/report.html (and DIR/results.csv) from a results folder")
    report.add_argument("dir", help="a results folder (`iotbench run --out DIR`)")
    report.add_argument("--benchmarks", help="pytest-benchmark JSON to include in the codec section")
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from iotbench.model.spec import default_spec, load_spec
    from iotbench.pipeline.runner import run_matrix
    from iotbench.progress import RichProgress, search_table, summary_table

    spec = load_spec(args.spec) if args.spec else default_spec()  # every check runs here: nothing is written before
    # absolute from here on: what is printed is where the files are, whichever folder the user is in
    out = Path(args.out or f"reports/run-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    if out.exists() and not out.is_dir():
        print(f"iotbench: error: --out {out}: is a file; give a folder (it is made if missing)", file=sys.stderr)
        return EXIT_USAGE
    source = Path(args.spec).read_text() if args.spec else "(built-in default spec)"
    cells = spec.cells()
    console = Console(stderr=True)
    console.print(f"iotbench: {len(cells)} cells -> {out}")
    searching = spec.rate == "max"  # each cell a ramp of trials: as many as the search takes
    with RichProgress(None if searching else len(cells), console) as progress:
        results = run_matrix(spec, out, progress, spec_source=source)
    wide = Console(width=max(160, Console().width))
    wide.print(summary_table(results))
    searches = search_table(results)
    if searches is not None:
        wide.print(searches)
    if not args.no_report:
        _report(out, console)
    console.print(f"results: {out / 'results.jsonl'}")
    for r in results:
        # a measurement, not a crash: said plainly (a search's trials: its table above says why they stopped)
        if r.search is None and (r.events_lost or r.events_failed or r.events_late):
            stored = f", {r.events_failed_stored} of them stored all the same" if r.events_failed_stored else ""
            late = f", {r.events_late} stored only after the drain (late)" if r.events_late else ""
            console.print(
                f"[yellow]cell {r.cell}: {r.events_lost} events lost, {r.events_failed} events in failed "
                f"sends{stored}{late} (see {r.dead_letter or 'the results'})[/yellow]"
            )
    if searching:  # a trial above the ceiling may fail: that is the finding; a search that found nothing is not
        return (
            0 if all(r.search["outcome"]["sustained_eps"] for r in results if r.search and "outcome" in r.search) else 1
        )
    return 0 if all(r.status == "ok" for r in results) else 1


def _report(out: Path, console: object) -> None:
    try:
        from iotbench.report import write_report
    except ImportError:
        return  # the report module is optional until it lands
    path = write_report(out)
    console.print(f"report: {path}")  # type: ignore[attr-defined]


def _cmd_report(args: argparse.Namespace) -> int:
    from iotbench.report import write_report

    folder = Path(args.dir)
    if not (folder / "results.jsonl").is_file():
        print(
            f"iotbench: error: {folder}: no results.jsonl there; give the folder `iotbench run --out DIR` wrote",
            file=sys.stderr,
        )
        return EXIT_USAGE
    benchmarks = Path(args.benchmarks) if args.benchmarks else None
    if benchmarks is not None and not benchmarks.is_file():
        print(
            f"iotbench: error: --benchmarks {benchmarks}: no such file; make it with "
            "`pytest tests/benchmarks --benchmark-only --benchmark-json FILE`",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        path = write_report(folder, benchmarks)
    except ValueError as exc:
        print(f"iotbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"report: {path}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from iotbench.codecs import CODECS
    from iotbench.compression import COMPRESSIONS
    from iotbench.transports import TRANSPORTS
    from iotbench.transports.options import shown

    print("codecs (codecs = [...] in a spec)")
    for name in CODECS.names():
        usable, why = CODECS.status(name)
        print(f"  {name:<18} {CODECS.load(name).label if usable else 'not usable here: ' + why}")
    print("compressions (compression = [...])")
    for name in COMPRESSIONS.names():
        usable, why = COMPRESSIONS.status(name)
        print(f"  {name:<18} {COMPRESSIONS.load(name).label if usable else 'not usable here: ' + why}")
    print("transports (transports = [...]; options in [transport_options.NAME], a list compares values)")
    for name in TRANSPORTS.names():
        usable, why = TRANSPORTS.status(name)
        if not usable:
            print(f"  {name:<18} not usable here: {why}")
            continue
        transport = TRANSPORTS.load(name)
        print(f"  {name:<18} {transport.label}")
        for option in transport.Options.declared():
            allowed = option.allowed()
            print(
                f"      {option.name:<18} {option.kind:<12} {shown(option.default):<18} "
                f"{allowed + ' -- ' if allowed else ''}{option.option.help}"
            )
    return 0


def _cmd_codecs(args: argparse.Namespace) -> int:
    from iotbench.studies.codec_table import command

    return command(
        args.names, compression=args.compression, evolution=args.evolution, overhead=args.overhead, as_json=args.json
    )


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    from iotbench.model.spec import SpecError

    args = _parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a CI cancel, `timeout`) takes the Ctrl-C path, so every server started is stopped
        signal.signal(signal.SIGTERM, _terminate)
    handlers = {"run": _cmd_run, "list": _cmd_list, "report": _cmd_report, "codecs": _cmd_codecs}
    try:
        return handlers[args.command](args)
    except SpecError as exc:
        print(f"iotbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("iotbench: interrupted; servers were stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
