"""Costs of the Variational Shape Learner, measured in one run (issue 7).

    python benchmarks/vsl.py [--quick] [--device cuda]

1. Training throughput (shapes per second) at 30³, batch 64, ELBO with the seed's KL weight,
   Adam: steps of the pgm3d objective through Pyro's traces, medians of interleaved rounds,
   and the implied seconds per epoch of the procedural 10-class set (800 training grids).
2. Memory at batch 64: on the CPU the growth of the process's peak resident set over one
   training step (model and data already in memory); on a GPU ``max_memory_allocated``.
3. On a GPU only: channels-last 3D and bfloat16 autocast, each kept only if its ELBO stays
   within 0.1% of float32 on the same batch and parameters.
"""

from __future__ import annotations

import argparse
import resource
import statistics

import torch
from _timing import interleaved

from pgm3d.data import voxel_classes
from pgm3d.inference import OBJECTIVES
from pgm3d.models import VSL

BATCH = 64


def _step(vsl, loss_fn, optimizer, x):
    optimizer.zero_grad()
    loss = loss_fn(x, None, scale=1.0)
    loss.backward()
    optimizer.step()
    return loss


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}\n")
    data = voxel_classes(8, resolution=30, seed=0)  # 80 grids: enough distinct batches
    x = VSL.rows(data.voxels).to(device)[:BATCH]
    torch.manual_seed(0)
    vsl = VSL().to(device)
    loss_fn = OBJECTIVES["elbo"](vsl, kl_weight=VSL.kl_weight_for())
    optimizer = torch.optim.Adam(vsl.parameters(), lr=5e-5)

    # 2. memory of training steps at batch 64 (activations, gradients, Adam's moments)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        for _ in range(2):
            _step(vsl, loss_fn, optimizer, x)
        _sync(device)
        peak = torch.cuda.max_memory_allocated(device) - base
        memory = f"{peak / 2**20:.0f} MiB allocated above the model and data"
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        for _ in range(2):
            _step(vsl, loss_fn, optimizer, x)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        memory = (
            f"+{(after - before) / 2**10:.0f} MiB of peak resident memory over the model and "
            f"data ({after / 2**10:.0f} MiB for the whole process)"
        )

    # 1. throughput
    rounds = 3 if args.quick else 7

    def step():
        _step(vsl, loss_fn, optimizer, x)
        _sync(device)

    times = interleaved({"step": step}, rounds=rounds, inner=2 if args.quick else 5)["step"]
    per_step = statistics.median(times)
    alpha = VSL.kl_weight_for()
    print(f"1. VSL training at 30^3, batch {BATCH}, ELBO (KL weight {alpha:g}), Adam")
    print(f"   {per_step * 1e3:.0f} ms per step = {BATCH / per_step:.1f} shapes/s")
    print(f"   epoch of 800 training grids: {800 / (BATCH / per_step):.1f} s")
    print(f"\n2. memory at batch {BATCH}: {memory}")

    if device.type == "cuda":
        print("\n3. GPU variants (kept only if the ELBO is within 0.1% of float32)")

        def elbo() -> float:
            torch.manual_seed(1)  # the same latent draws for every variant
            with torch.no_grad():
                return float(loss_fn(x, None))

        ref = elbo()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf = elbo()
        vsl.to(memory_format=torch.channels_last_3d)
        cl = elbo()
        for name, value in (("channels-last 3D", cl), ("bfloat16 autocast", bf)):
            rel = abs(value - ref) / abs(ref)
            verdict = "keep" if rel < 1e-3 else "drop"
            print(f"   {name}: ELBO relative difference {rel:.2e} -> {verdict}")


if __name__ == "__main__":
    main()
