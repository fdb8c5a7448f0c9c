"""Training across processes: pgm3d's own loop, Lightning on one process and Lightning's DDP on
two CPU processes (gloo), measured in one run (issue 18).

    python benchmarks/lightning_ddp.py [--quick]

Each case runs in a fresh process (Lightning's ``ddp`` starts this script again for rank 1), on
digits rows (1,437 x 64) with a VAE (hidden 2 x 256, latent 16, batch 128 rows per step over all
processes), and reports optimiser steps per second of training (start-up excluded) and the
wall time of the whole process. A second model with a point-mass guide (no sampling noise,
rows in order, the first 1,408 = 11 x 128 rows so that no step is partial) checks that two
processes end at the parameters of one at the same effective batch.

On a GPU machine with several GPUs: ``python benchmarks/lightning_ddp.py --accelerator gpu``
(devices 1 and 2). Set ``OMP_NUM_THREADS=1`` for steadier ratios on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def _data():
    from sklearn.datasets import load_digits

    return torch.as_tensor(load_digits().data / 16.0, dtype=torch.float32)


def _case(args) -> None:
    """One training run; rank 0 writes its numbers to ``args.out``."""
    from pgm3d.lightning import fit_lightning
    from pgm3d.models import VAE

    x = _data()
    torch.manual_seed(0)
    if args.model == "point":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "lightning"))
        from ddp_script import PointGuided

        model = PointGuided(dim=64, latent=4)
        x = x[:1408]  # whole steps: DistributedSampler pads a partial last step with repeats
    else:
        model = VAE(64, 16, (256, 256), "bernoulli")
    if args.case == "fit":
        from pgm3d.inference import fit

        history = fit(model, x, epochs=args.epochs, batch_size=128, lr=1e-3, progress=False)
        rank = 0
    else:
        history = fit_lightning(model, x, epochs=args.epochs, batch_size=128, lr=1e-3,
                                strategy="ddp" if args.devices > 1 else "auto",
                                devices=args.devices, accelerator=args.accelerator,
                                shuffle=args.model != "point", progress=False)  # fmt: skip
        rank = history.rank
    if rank == 0:
        params = torch.cat([p.detach().flatten().cpu() for p in model.parameters()])
        record = {"steps": history.steps, "seconds": history.seconds, "params": params.tolist()}
        Path(args.out).write_text(json.dumps(record))


def _run(case: str, devices: int, model: str, epochs: int, accelerator: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--case", case, "--devices", str(devices)]
        cmd += ["--model", model, "--epochs", str(epochs), "--accelerator", accelerator]
        cmd += ["--out", str(out)]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        record = json.loads(out.read_text())
    return {**record, "wall": wall}


def main(quick: bool, accelerator: str) -> None:
    epochs = 3 if quick else 20
    cases = [("fit", 1, "pgm3d fit (own loop)"), ("lightning", 1, "Lightning, 1 process"),
             ("lightning", 2, "Lightning DDP, 2 processes")]  # fmt: skip
    print(f"torch {torch.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"accelerator {accelerator}, {epochs} epochs of digits, batch 128\n")  # fmt: skip
    rows = {label: _run(case, n, "vae", epochs, accelerator) for case, n, label in cases}
    base = rows["Lightning, 1 process"]["steps"] / rows["Lightning, 1 process"]["seconds"]
    print(f"{'case':<30}{'steps':>7}{'train s':>9}{'steps/s':>9}{'ratio':>7}{'wall s':>8}")
    for label, r in rows.items():
        rate = r["steps"] / r["seconds"]
        print(f"{label:<30}{r['steps']:>7}{r['seconds']:>9.2f}{rate:>9.1f}"
              f"{rate / base:>7.2f}{r['wall']:>8.1f}")  # fmt: skip
    one = _run("lightning", 1, "point", epochs, accelerator)
    two = _run("lightning", 2, "point", epochs, accelerator)
    diff = (torch.tensor(one["params"]) - torch.tensor(two["params"])).abs().max().item()
    print(f"\npoint-mass guide: max |parameter difference|, 2 processes vs 1: {diff:.2e}")
    print("(ratio: steps/s against Lightning on one process; DDP steps are of the same "
          "128 rows, split 64 + 64)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--case", choices=("fit", "lightning"))
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--model", default="vae")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.case:
        _case(args)
    else:
        main(args.quick, args.accelerator)
