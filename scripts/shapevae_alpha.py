"""What the thesis's KL weight alpha = 100 does to a ShapeVAE on pgm3d's shapes, and what it
means in pgm3d's units (issue 16, item 2).

The thesis (Nash & Williams 2017, eq. 3.5) maximises E_q[log p(x | z, e)] - alpha KL(q || p)
with alpha = 100 "to obtain good quality samples" and notes that the large alpha leaves much of
the variability to the noise. The reconstruction term is a sum over the D observed dimensions,
so alpha's pressure is relative to D: the thesis's chairs had about 5,000 points with normals
(D ~ 30,000, §3.3), pgm3d's runs have 32 points per part (D ~ 2,000-4,000). For every alpha
(and with a linear KL warm-up) this trains a ShapeVAE-8 and reports the active units, the KL
per shape, the test ELBO, how much the decoded means vary (collapse to the pattern means leaves
them constant within a pattern), and the completion error of dropped parts.

    OMP_NUM_THREADS=2 python scripts/shapevae_alpha.py [--family chairs_nonlinear]
        [--alphas 1 6 100] [--warmup 0] [--epochs 100] [--lr 1e-3] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import pyro.distributions
import torch

from pgm3d.data import drop_parts, shapes
from pgm3d.evaluation import active_units, imputation_mse
from pgm3d.inference import complete, fit
from pgm3d.models import ShapeVAE

THESIS_DIMS = 30_000  # 5,000 surface points with normals (thesis §3.3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="chairs_nonlinear")
    ap.add_argument("--alphas", type=float, nargs="+", default=[1.0, 6.0, 100.0])
    ap.add_argument("--warmup", type=int, nargs="+", default=[0], help="KL warm-up steps")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--points-per-part", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ppp = args.points_per_part
    train = shapes(args.family, args.n_train, seed=args.seed, points_per_part=ppp)
    test = shapes(args.family, 200, seed=args.seed + 1, points_per_part=ppp)
    g = torch.Generator().manual_seed(args.seed)
    dropped = drop_parts(test.existence, 0.25, generator=g)
    d = int(train.flat_mask().sum(-1).float().mean())
    print(f"{args.family}: {d} observed dimensions per shape on average; the thesis's alpha = 100"
          f" at D ~ {THESIS_DIMS:,} exerts the pressure per dimension of alpha = "
          f"{100 * d / THESIS_DIMS:.1f} here")  # fmt: skip
    print(
        "| alpha | warm-up steps | active units (of 8) | KL nats/shape | test ELBO nats/dim "
        "| decoded-mean variance / data variance | completion MSE x10^3 | s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for alpha in args.alphas:
        for warmup in args.warmup:
            t = time.perf_counter()
            torch.manual_seed(args.seed)
            vae = ShapeVAE.from_shapes(train, 8, min_variance=1e-3)
            x, mask = vae.data(train)
            fit(vae, x, "elbo", mask=mask, kl_weight=alpha, kl_warmup=warmup, epochs=args.epochs,
                batch_size=100, lr=args.lr, seed=args.seed, progress=False)  # fmt: skip
            vae.eval()
            xt, mt = vae.data(test)
            with torch.no_grad():
                q = vae.encode(xt, mt)
                prior = pyro.distributions.Normal(torch.zeros_like(q.mean), 1.0).to_event(1)
                kl = torch.distributions.kl_divergence(q, prior).mean()
                loc, _ = vae.decode(q.mean, xt[:, vae.point_dim :])
                pts = mt[:, : vae.point_dim]
                spread = (loc.var(0) * pts.all(0)).sum() / (xt[:, : vae.point_dim].var(0)
                                                            * pts.all(0)).sum()  # fmt: skip
                elbo = _elbo_per_dim(vae, xt, mt)
            units = active_units(vae, xt, mt).count
            entries = dropped[:, vae.part_of_entry]
            hidden = torch.cat([mt[:, : vae.point_dim] & ~entries, mt[:, vae.point_dim :]], -1)
            with torch.no_grad():
                filled = complete(vae, xt, hidden, "mwg", chains=1, warmup=50, thin=5,
                                  num_samples=10, seed=args.seed, progress=False).x  # fmt: skip
            scored = torch.zeros_like(mt)
            scored[:, : vae.point_dim] = entries & test.flat_mask()
            mse = imputation_mse(xt.double(), filled.double(), ~scored).mean
            print(f"| {alpha:g} | {warmup} | {units} | {float(kl):.1f} | {elbo:.3f} | "
                  f"{float(spread):.3f} | {1e3 * mse:.3f} | {time.perf_counter() - t:.0f} |",
                  flush=True)  # fmt: skip


def _elbo_per_dim(vae, x, mask) -> float:
    from pgm3d.evaluation import log_likelihood_per_dim

    ll, _ = log_likelihood_per_dim(vae, x, mask, num_samples=1)
    return float(ll.nanmean())


if __name__ == "__main__":
    main()
