"""What every experiment and workflow writes: ``metrics.json``, ``table.md`` and any other JSON
results, atomically (:mod:`pgm3d._io`), and the Markdown tables they hold."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from pgm3d._io import atomic_write_json, atomic_write_text

__all__ = ["json_safe", "markdown_table", "over_seeds", "write_results"]


def over_seeds(values: Sequence[float]) -> dict:
    """``{"mean", "se", "per_seed"}`` of one number measured under several seeds: the standard
    error is ``std / sqrt(n)`` (ddof 1), NaN for a single seed."""
    v = [float(x) for x in values]
    n = len(v)
    if n == 0:
        raise ValueError("over_seeds needs at least one value")
    mean = math.fsum(v) / n
    se = math.sqrt(math.fsum((x - mean) ** 2 for x in v) / (n - 1) / n) if n > 1 else math.nan
    return {"mean": mean, "se": se, "per_seed": v}


def markdown_table(header: Sequence[str], rows: Iterable[Sequence], *, title: str = "") -> str:
    """A Markdown table: the first column left-aligned, the others right-aligned (numbers);
    ``title`` as a level-1 heading above it."""
    lines = [f"# {title}\n"] if title else []
    lines += ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def json_safe(obj):
    """``obj`` with NaN and infinities as ``None`` (JSON has neither), recursively."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_results(out: str | Path, metrics: dict, table: str | None, **json_files: dict) -> Path:
    """Write ``metrics.json``, ``table.md`` (unless ``table`` is None) and ``<name>.json`` for
    each keyword (e.g. ``results=...``) into ``out``, each atomically; returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, value in json_files.items():
        atomic_write_json(out / f"{name}.json", value)
    atomic_write_json(out / "metrics.json", metrics)
    if table is not None:
        atomic_write_text(out / "table.md", table)
    return out
