"""Charts of numbers: line curves, grouped bars, a confusion matrix. Drawn with matplotlib's
object API (a ``Figure`` of its own, no pyplot), so drawing one never switches the backend of a
notebook."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["bar_groups", "confusion_matrix", "curves"]


def curves(
    series: dict[str, list[float]],
    path: str | Path,
    *,
    xlabel: str = "epoch",
    ylabel: str = "",
    title: str | None = None,
    x_from: int = 1,
    log: bool = False,
    markers: bool = False,
) -> Path:
    """One line per entry of ``series`` (``{label: values}``), at x = ``x_from``,
    ``x_from + 1``, ...; a legend when there is more than one; saved as a PNG.

    :param bool log: a logarithmic value axis.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.2), dpi=110)
    ax = fig.subplots()
    for label, values in series.items():
        x = np.arange(x_from, len(values) + x_from)
        ax.plot(x, values, label=label, **({"marker": "o", "ms": 3} if markers else {}))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if title:
        ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def confusion_matrix(matrix, names: list[str], path: str | Path, *, title: str = "") -> Path:
    """A confusion matrix (rows: true class, columns: predicted) as a heat map."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5), dpi=110)
    ax = fig.subplots()
    ax.imshow(np.asarray(matrix), cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=60, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def bar_groups(
    groups: dict[str, dict[str, float]],
    path: str | Path,
    *,
    ylabel: str = "",
    title: str | None = None,
    log: bool = False,
) -> Path:
    """One cluster of bars per group (``{group: {bar: value}}``), the bars of every group in
    the order of their first appearance, one colour each; saved as a PNG.

    :param bool log: a logarithmic value axis (values must then be positive).
    """
    from matplotlib.figure import Figure

    bars = list(dict.fromkeys(b for g in groups.values() for b in g))
    fig = Figure(figsize=(max(5.0, 0.45 * len(bars) * len(groups) + 2), 3.6), dpi=110)
    ax = fig.subplots()
    width = 0.8 / max(1, len(bars))
    colours = [f"C{i % 10}" for i in range(len(bars))]
    for i, bar in enumerate(bars):
        xs = np.arange(len(groups)) + (i - (len(bars) - 1) / 2) * width
        ys = [groups[g].get(bar, np.nan) for g in groups]
        ax.bar(xs, ys, width, label=bar, color=colours[i])
    ax.set_xticks(np.arange(len(groups)), list(groups))
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncols=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
