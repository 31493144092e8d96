"""The report's charts (matplotlib, Agg backend: no display, no network)."""

from __future__ import annotations

from typing import Any

from iotbench.report.page import chart

__all__ = ["bars", "heatmaps", "percentiles", "series"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bars(frame: Any, title: str, ylabel: str, alt: str) -> str:
    """Grouped bars: ``frame``'s index along x, one bar per column."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(frame) + 3), 3.4))
    frame.plot.bar(ax=ax, rot=20, width=0.8)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("")
    ax.grid(axis="y", alpha=0.3)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.4g", fontsize=7)
    return chart(fig, alt)


def percentiles(frame: Any, title: str, alt: str) -> str:
    """Latency percentiles (columns p50 .. p999) per row label, log scale."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for label, row in frame.iterrows():
        ax.plot(list(frame.columns), list(row.values), marker="o", label=str(label))
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("ms (log)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return chart(fig, alt)


def series(frame: Any, title: str, ylabel: str, alt: str, window: tuple[float, float], log: bool = False) -> str:
    """One line per column of ``frame`` against its index (seconds from the schedule's start); the
    measured window shaded."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for label in frame.columns:
        ax.plot(frame.index, frame[label], marker=".", label=str(label))
    ax.axvspan(window[0], window[1], color="0.9", zorder=0, label="measured window")
    if log:
        from matplotlib.ticker import FormatStrFormatter, NullFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("s from the schedule's start")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return chart(fig, alt)


def heatmaps(pivots: list[tuple[str, Any, str]], title: str, alt: str) -> str:
    """Side-by-side heatmaps of (name, pivot frame serialization x variant, number format)."""
    plt = _plt()
    rows = max(p.shape[0] for _, p, _ in pivots)
    cols = max(p.shape[1] for _, p, _ in pivots)
    side_by_side = cols <= 3  # wide matrices stack, so labels stay readable when the page scales the image
    panel_w, panel_h = max(3.0, 1.1 * cols + 1.6), max(1.8, 0.4 * rows + 1.2)
    shape = (1, len(pivots)) if side_by_side else (len(pivots), 1)
    size = (panel_w * len(pivots), panel_h) if side_by_side else (panel_w, panel_h * len(pivots))
    fig, axes = plt.subplots(*shape, figsize=size, squeeze=False)
    for ax, (name, pivot, fmt) in zip(axes.flat, pivots):
        values = pivot.to_numpy(dtype=float)
        ax.imshow(values, cmap="viridis", aspect="auto")
        ax.set_xticks(range(pivot.shape[1]), [str(c) for c in pivot.columns], rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(pivot.shape[0]), [str(i) for i in pivot.index], fontsize=8)
        ax.set_title(name, fontsize=9)
        finite = values[values == values]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0
        for (i, j), v in _cells(values):
            ax.text(
                j,
                i,
                "-" if v != v else format(v, fmt),
                ha="center",
                va="center",
                fontsize=8,
                color="black" if v == v and v > mid else "white",
            )
    fig.tight_layout()
    return chart(fig, alt)


def _cells(values: Any) -> Any:
    rows, cols = values.shape
    return (((i, j), values[i, j]) for i in range(rows) for j in range(cols))
