"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time


def interleaved(fns: dict, rounds: int, inner: int = 5) -> dict[str, list[float]]:
    """Seconds per call of each function, measured in ``rounds`` round-robin rounds.

    In each round every function is called once untimed (to warm the caches after its
    neighbour) and then ``inner`` times in a row, timed together. Round-robin exposes the
    candidates to the same machine load, so per-round ratios are fair on a noisy machine.
    """
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()
            t = time.perf_counter()
            for _ in range(inner):
                fn()
            times[name].append((time.perf_counter() - t) / inner)
    return times


def median_ratio(a: list[float], b: list[float]) -> float:
    """Median over rounds of ``a[i] / b[i]``."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))
