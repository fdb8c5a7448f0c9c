"""Costs of ShapeVAE, measured in one run (issue 5).

    python benchmarks/shapevae.py [--quick]

1. One training step (ELBO, KL weight 100, Adam) through pgm3d's objective and Pyro's traces vs
   the same network and loss written in plain PyTorch (goal <= 1.15x).
2. Seconds per epoch at the thesis's scale (3,700 chairs, ~2,000 points with normals each,
   batch 100) and the implied time for 500 epochs on this CPU.
3. Completion throughput: rows x chain-steps per second of Metropolis-within-Gibbs and
   pseudo-Gibbs on 1,000 rows.

CPU threads of this machine, float32; step times are medians of interleaved rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _timing import interleaved, median_ratio

from pgm3d.data import shapes
from pgm3d.inference import OBJECTIVES, complete
from pgm3d.models import ShapeVAE

ALPHA = 100.0


def plain_loss(model: ShapeVAE, x, mask, scale):
    """The ELBO of ShapeVAE with KL weight alpha, by hand: the same network, the same
    single-sample estimator (log p(e) + log p(x|z,e) + alpha (log p(z) - log q(z|x)))."""
    points, e = model.split(x)
    q = model.encode(x, mask)
    z = q.rsample()
    loc, sd = model.decode(z, e)
    keep = model.entry_mask(e) & mask[:, : model.point_dim]
    log_lik = torch.where(keep, torch.distributions.Normal(loc, sd).log_prob(points), 0.0).sum(-1)
    log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    log_e = model.existence_distribution().log_prob(e)
    bound = log_e + log_lik + ALPHA * (log_prior - q.log_prob(z))
    return -scale * bound.sum()


def bench_step(quick: bool) -> None:
    ppp = 32 if quick else 222
    data = shapes("chairs", 200, seed=0, points_per_part=ppp)
    torch.manual_seed(0)
    model = ShapeVAE.from_shapes(data, 64)
    x, mask = model.data(data)
    xb, mb = x[:100], mask[:100]
    objective = OBJECTIVES["elbo"](model, kl_weight=ALPHA)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(loss_fn):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()

    fns = {
        "pgm3d": lambda: step(lambda: objective(xb, mb, scale=2.0)),
        "plain": lambda: step(lambda: plain_loss(model, xb, mb, 2.0)),
    }
    t = interleaved(fns, rounds=3 if quick else 5, inner=2 if quick else 3)
    r = median_ratio(t["pgm3d"], t["plain"])
    print(
        f"## 1. one training step, batch 100, {data.num_points} points with normals "
        f"(D = {model.point_dim})\n"
    )
    print("| | ms/step | steps/s |\n|---|---|---|")
    for name in fns:
        ms = 1e3 * statistics.median(t[name])
        print(f"| {name} | {ms:.1f} | {1e3 / ms:.2f} |")
    print(f"\npgm3d / plain PyTorch: {r:.3f}x (goal <= 1.15x)")


def bench_epoch(quick: bool) -> None:
    n = 400 if quick else 3700
    data = shapes("chairs", n, seed=0, points_per_part=222)
    torch.manual_seed(0)
    model = ShapeVAE.from_shapes(data, 64)
    x, mask = model.data(data)
    objective = OBJECTIVES["elbo"](model, kl_weight=ALPHA)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    start = time.perf_counter()
    for i in range(0, n, 100):
        opt.zero_grad()
        objective(x[i : i + 100], mask[i : i + 100], scale=n / 100).backward()
        opt.step()
    seconds = time.perf_counter() - start
    print(
        f"\n## 2. one epoch of {n} chairs x {data.num_points} points (batch 100): {seconds:.1f} s"
    )
    per_epoch = seconds * 3700 / n
    print(
        f"500 epochs of 3,700 chairs on this CPU: {500 * per_epoch / 3600:.1f} h "
        f"(thesis: 30 min on a Titan X)"
    )


def bench_completion(quick: bool) -> None:
    rows = 200 if quick else 1000
    data = shapes("chairs", rows, seed=1, points_per_part=32)
    torch.manual_seed(0)
    model = ShapeVAE.from_shapes(data, 64)
    x, mask = model.data(data)
    dropped = mask.clone()
    back = data.part_slice("back")
    dropped[:, back.start * 6 : back.stop * 6] = False
    print(f"\n## 3. completion of {rows} rows (D = {model.point_dim}), 20 sweeps\n")
    print("| method | s | rows x steps / s |\n|---|---|---|")
    for method in ("pseudo_gibbs", "mwg"):
        start = time.perf_counter()
        with torch.no_grad():
            complete(model, x, dropped, method, chains=1, warmup=10, thin=1, num_samples=10, seed=0)
        seconds = time.perf_counter() - start
        print(f"| {method} | {seconds:.2f} | {rows * 20 / seconds:,.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    quick = parser.parse_args().quick
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    bench_step(quick)
    bench_epoch(quick)
    bench_completion(quick)
