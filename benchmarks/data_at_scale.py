"""Data at scale, measured in one run (issue 18).

    python benchmarks/data_at_scale.py [--quick] [--gigabytes G]

1. ``complete`` over a ``DataLoader`` against the same rows as one tensor: the same result
   (exact posterior of a PPCA, 20,000 rows x 64, 30% missing) and the time ratio (median of
   interleaved rounds).
2. ``fit`` of a VAE on a memory-mapped ``.npy`` of ``G`` gigabytes (float32 rows of 1,000
   entries, written here to a temporary folder) through :class:`~pgm3d.data.batches.Rows`: one
   epoch, with the process's anonymous (non-file) memory sampled every step — the rows stay
   on disk and in the page cache, which the kernel can drop, so the process's own memory does
   not grow with the file.

Set ``OMP_NUM_THREADS=1`` for steadier ratios on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _timing import interleaved, median_ratio
from torch.utils.data import DataLoader

from pgm3d import PPCA, complete
from pgm3d.data.batches import Rows, collate_rows
from pgm3d.inference import fit
from pgm3d.models import VAE


def _anonymous_mb() -> float:
    """Resident anonymous memory of this process (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def completion(quick: bool) -> None:
    n = 4000 if quick else 20_000
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 64, generator=g, dtype=torch.float64) @ torch.randn(
        64, 64, generator=g, dtype=torch.float64
    )
    model = PPCA.fit(x, 8)
    holey = torch.where(torch.rand(n, 64, generator=g) < 0.3, torch.nan, x)
    loader = DataLoader(Rows(holey), batch_size=1024, collate_fn=collate_rows)
    one, many = complete(model, holey), complete(model, loader)
    diff = (one.x - many.x).abs().max().item()
    times = interleaved({"tensor": lambda: complete(model, holey),
                         "loader": lambda: complete(model, loader)},
                        rounds=3 if quick else 5, inner=1)  # fmt: skip
    print(f"1. complete(exact) on {n:,} x 64 rows, 30% missing; DataLoader batches of 1,024")
    ratio = median_ratio(times["loader"], times["tensor"])
    print(f"   one tensor {statistics.median(times['tensor']):.3f} s, DataLoader "
          f"{statistics.median(times['loader']):.3f} s; ratio {ratio:.2f}x; "
          f"max |difference| {diff:.1e}")  # fmt: skip


def memory_mapped(gigabytes: float) -> None:
    D = 1000
    n = int(gigabytes * 1e9 / (4 * D))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.npy"
        start = time.perf_counter()
        rows = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, D))
        rng = np.random.default_rng(0)
        block = rng.random((10_000, D), dtype=np.float32)
        for i in range(0, n, len(block)):  # a repeated block: writing, not generating, dominates
            rows[i : i + len(block)] = block[: n - i]
        rows.flush()
        del rows
        written = time.perf_counter() - start
        mapped = np.load(path, mmap_mode="r")
        torch.manual_seed(0)
        model = VAE(D, 16, (128,))
        before, peak = _anonymous_mb(), [0.0]

        def collate(items):  # sample the memory at every batch the loader makes
            peak[0] = max(peak[0], _anonymous_mb())
            return collate_rows(items)

        loader = DataLoader(Rows(mapped), batch_size=1024, shuffle=True, collate_fn=collate)
        start = time.perf_counter()
        history = fit(model, loader, epochs=1, progress=False)
        seconds = time.perf_counter() - start
    print(f"\n2. fit on a memory-mapped .npy of {n:,} x {D} float32 = {n * D * 4 / 1e9:.1f} GB "
          f"(written in {written:.0f} s)")  # fmt: skip
    print(f"   one epoch, {history.steps} steps in {seconds:.0f} s "
          f"({history.steps / seconds:.1f} steps/s)")  # fmt: skip
    print(f"   anonymous memory: {before:.0f} MB before training, at most {peak[0]:.0f} MB during")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--gigabytes", type=float, default=None)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    completion(args.quick)
    memory_mapped(args.gigabytes or (0.2 if args.quick else 4.0))
