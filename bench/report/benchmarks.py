"""pytest-benchmark JSON (``--benchmark-json FILE``) as a table for the codec section.

The codec suite's benchmarks carry sizes in ``extra_info``; whatever keys they
hold become columns, so the table follows the suite without a change here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["load_benchmarks"]


def load_benchmarks(path: Path) -> Any:
    """One row per benchmark: group, name, median and mean in microseconds per call, then extra_info."""
    import pandas as pd

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{path}: not a pytest-benchmark JSON file ({exc}); "
            "make one with `pytest tests/benchmarks --benchmark-only --benchmark-json FILE`"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError(f"{path}: has no 'benchmarks' list; is it pytest-benchmark's --benchmark-json output?")
    rows = []
    for bench in data["benchmarks"]:
        stats = bench.get("stats") or {}
        row: dict[str, Any] = {
            "group": bench.get("group") or "",
            "benchmark": bench.get("name") or bench.get("fullname", "?"),
            "median_us": (stats.get("median") or 0) * 1e6,
            "mean_us": (stats.get("mean") or 0) * 1e6,
            "rounds": stats.get("rounds"),
        }
        for key, value in (bench.get("extra_info") or {}).items():
            if isinstance(value, (int, float, str, bool)):
                row[key] = value
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values(["group", "benchmark"]).reset_index(drop=True) if not frame.empty else frame
