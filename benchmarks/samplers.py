"""Rows per second of the sample-based completion back ends on the digits VAE, measured in one
run (issue 19): MwG, the batched HMC, Pyro's NUTS (one chain at a time over the rows jointly)
and importance resampling, each drawing the same number of kept draws per row.

    python benchmarks/samplers.py [--quick]

The VAE (latent 8, hidden 256 x 256) is trained for a few epochs first; half of each test
row's entries are hidden. Each method runs 2 chains x (50 warm-up + 50 kept) sweeps (HMC: 10
leapfrog steps a sweep; NUTS: on 8 rows only, it is slow); rows/s counts the rows completed per
second of wall time. Set ``OMP_NUM_THREADS=1`` for steadier ratios on a shared machine.
"""

from __future__ import annotations

import argparse
import time

import torch

from pgm3d.data import random_mask
from pgm3d.data.images import load_digits
from pgm3d.inference import complete, fit
from pgm3d.models import VAE


def main(quick: bool) -> None:
    x = (load_digits(dtype=torch.float32).x + 1) / 2  # pixels in [0, 1]
    train, test = x[:1400], x[1400:]
    torch.manual_seed(0)
    model = VAE(64, 8, (256, 256), "bernoulli")
    fit(model, train, epochs=3 if quick else 20, batch_size=128, lr=1e-3, progress=False)
    rows = 16 if quick else 64
    data = test[:rows]
    mask = random_mask(data.shape, 0.5, generator=torch.Generator().manual_seed(1))
    hidden = torch.where(mask, data, torch.nan)
    sweeps = {"chains": 2, "warmup": 10 if quick else 50, "num_samples": 10 if quick else 50}
    cases = {
        "mwg": ("mwg", rows, dict(thin=1, **sweeps)),
        "hmc": ("hmc", rows, dict(thin=1, **sweeps)),
        "importance": (
            "importance",
            rows,
            {"num_proposals": 1000, "chains": 2, "num_samples": sweeps["num_samples"]},
        ),
        "nuts (8 rows)": ("nuts", 8, dict(thin=1, **sweeps)),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; digits VAE, {rows} "
          f"rows, half of each hidden\n")  # fmt: skip
    print(f"{'method':<16}{'rows':>6}{'seconds':>9}{'rows/s':>9}{'MSE':>8}")
    rate = {}
    for name, (method, n, options) in cases.items():
        start = time.perf_counter()
        with torch.no_grad():
            done = complete(model, hidden[:n], mask[:n], method, seed=0, **options)
        seconds = time.perf_counter() - start
        rate[name] = n / seconds
        mse = float(((done.x - data[:n])[~mask[:n]]).pow(2).mean())
        print(f"{name:<16}{n:>6}{seconds:>9.2f}{rate[name]:>9.1f}{mse:>8.4f}")
    print(f"\nHMC / MwG rows/s: {rate['hmc'] / rate['mwg']:.2f} (goal: at least 0.1); "
          f"HMC / NUTS: {rate['hmc'] / rate['nuts (8 rows)']:.0f}x")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)
