"""Charts of numbers: line curves, grouped bars, a confusion matrix. Drawn with matplotlib's
object API (a ``Figure`` of its own, no pyplot), so drawing one never switches the backend of a
notebook."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["bar_groups", "confusion_matrix", "curves", "parity_plot"]


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


def parity_plot(truth, values: dict, path: str | Path, *, most: int = 3000) -> Path:
    """Imputed against true value of the hidden entries, one panel per method, with the
    diagonal (a perfect completion lies on it) and each method's MSE; at most ``most``
    entries are drawn (evenly), all are scored.

    :param truth: ``(M,)`` true values of the hidden entries.
    :param dict values: method name -> ``(M,)`` its imputed values.
    """
    from matplotlib.figure import Figure

    t = np.asarray(truth, dtype=float).reshape(-1)
    n = max(1, len(values))
    fig = Figure(figsize=(2.6 * n + 0.4, 2.9), dpi=110)
    axes = np.atleast_1d(fig.subplots(1, n, sharex=True, sharey=True))
    step = max(1, len(t) // most)
    lo, hi = (float(t.min()), float(t.max())) if len(t) else (0.0, 1.0)
    for ax, (name, v) in zip(axes, values.items(), strict=False):
        v = np.asarray(v, dtype=float).reshape(-1)
        ax.scatter(t[::step], v[::step], s=3, alpha=0.35, linewidths=0)
        ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8)
        mse = float(np.mean((v - t) ** 2)) if len(t) else float("nan")
        ax.set_title(f"{name}\nMSE {mse:.4g}", fontsize=8)
        ax.set_xlabel("true", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("imputed", fontsize=8)
    fig.suptitle(f"hidden entries ({len(t):,}): imputed against true", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
