"""``python -m iotbench.studies.direct_loops [LOOP ...]``: every loop named (all by default), one Markdown row each."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from iotbench.studies.direct_loops import LOOPS, measure, sample_payload
from iotbench.studies.direct_loops.base import DURATION_S, WARMUP_S


def main(argv: list[str]) -> None:
    names = argv or LOOPS.names()
    folder = Path(tempfile.mkdtemp(prefix="iotbench-direct-"))
    print(
        f"load average {os.getloadavg()[0]:.2f}; payload {len(sample_payload()[0])} B; "
        f"{WARMUP_S:g} s warm-up, {DURATION_S:g} s measured\n"
    )
    print("| loop | sent | acknowledged/s | delivered/s | all delivered | sender / receiver CPU us/ev |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for name in names:
        r = measure(name, folder)
        print(
            f"| {r.label} | {r.sent:,} | {r.acked_eps:,.0f} | {r.delivered_eps:,.0f} | {r.complete} | "
            f"{r.sender_cpu_us:.1f} / {r.receiver_cpu_us:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
