"""Exact missing-data posterior vs FCA vs a per-row numpy loop, at Frey-faces size.

Prints, from one run on one machine: wall time per call of ``complete(..., "exact")``,
``complete(..., "fca")`` and a per-row numpy implementation of the exact posterior; the exact
method's achieved GFLOP/s against a dense matrix multiply measured in the same run; and the
same for quarter masks (4 patterns). Goals (issue 2): exact >= 2x faster than the numpy loop;
quarter-mask exact within 2x of FCA; random-mask exact >= 30% of the matmul rate.

    python benchmarks/missing_fa.py [--dtype float32|float64] [--repeats 30]

Uses Frey faces when ``frey_rawface.mat`` is found (see ``pgm3d.data.images.find_data_file``),
otherwise data of the same size drawn from a random PPCA.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from _timing import interleaved, median_ratio

from pgm3d import PPCA, complete
from pgm3d.data.images import load_frey, train_test_split
from pgm3d.data.masks import quarter_mask, random_mask
from pgm3d.linalg import SPARSE_DENSITY, unique_rows


def exact_flops(mask: torch.Tensor, K: int) -> float:
    """Floating-point operations of the exact method as pgm3d runs it."""
    B, D = mask.shape
    patterns, _ = unique_rows(mask)
    U = patterns.shape[0]
    T = K * (K + 1) // 2
    n_obs = patterns.sum(1)
    selected = torch.minimum(n_obs, D - n_obs).sum().item()  # build or downdate side
    gram = 2 * selected * T if selected < SPARSE_DENSITY * U * D else 2 * U * D * T
    return (
        D * K * K  # outer products w_d W_d W_d^T
        + 2 * D * K * K  # full-data precision (used by the downdates)
        + gram  # one product for every pattern's precision
        + U * K**3 / 3  # Cholesky per pattern
        + 2 * B * D * K  # b = W^T Psi^-1 (x - mu) for every row
        + 2 * B * K * K  # two triangular solves per row
        + 2 * B * D * K  # decode the posterior mean
    )


def numpy_loop(W, mu, psi, x, mask):
    """The textbook implementation: one K x K Cholesky and solve per row."""
    out = x.copy()
    K = W.shape[1]
    for i in range(x.shape[0]):
        v = mask[i]
        Wv = W[v]
        P = np.eye(K) + Wv.T @ (Wv / psi[v, None])
        L = np.linalg.cholesky(P)
        b = Wv.T @ ((x[i, v] - mu[v]) / psi[v])
        m = np.linalg.solve(L.T, np.linalg.solve(L, b))
        out[i, ~v] = W[~v] @ m + mu[~v]
    return out


def data(dtype):
    try:
        x = load_frey(dtype=dtype).x
        train, test = train_test_split(x, 0.2, generator=torch.Generator().manual_seed(0))
        model = PPCA.fit(train, explained_variance=0.9)
        return model, test, "Frey faces"
    except FileNotFoundError:
        g = torch.Generator().manual_seed(0)
        model = PPCA.random(560, 42, sigma2=0.05, generator=g, dtype=dtype)
        return model, model.sample(393, generator=g), "PPCA-generated (Frey file not found)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    model, x, source = data(dtype)
    B, D = x.shape
    K = model.latent_dim
    g = torch.Generator().manual_seed(1)
    masks = {
        "random 50%": random_mask(x.shape, 0.5, generator=g),
        "quarters": quarter_mask(x.shape, (28, 20), generator=g),
    }
    W, mu, psi = (t.detach().double().numpy() for t in (model.W, model.mu, model.psi))
    n = 1024
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    print(
        f"data: {source}; B={B}, D={D}, K={K}, dtype={args.dtype}, "
        f"threads={torch.get_num_threads()}, {args.repeats} interleaved rounds"
    )
    rows = []
    with torch.no_grad():
        for name, mask in masks.items():
            U = unique_rows(mask)[0].shape[0]
            xn, mn = x.double().numpy(), mask.numpy()
            # same answer as the loop, or the timing means nothing
            ref = numpy_loop(W, mu, psi, xn, mn)
            got = complete(model, x, mask, "exact").x.double().numpy()
            tol = 1e-3 if dtype == torch.float32 else 1e-9
            assert np.abs(got - ref).max() < tol * max(1.0, np.abs(ref).max()), name
            t = interleaved(
                {
                    "exact": lambda mask=mask: complete(model, x, mask, "exact"),
                    "fca": lambda mask=mask: complete(model, x, mask, "fca"),
                    "loop": lambda xn=xn, mn=mn: numpy_loop(W, mu, psi, xn, mn),
                    "matmul": lambda: a @ b,
                },
                args.repeats,
            )
            flops = exact_flops(mask, K)
            rate = [flops / te / 1e9 for te in t["exact"]]
            peak = [2 * n**3 / tm / 1e9 for tm in t["matmul"]]
            share = statistics.median(r / p for r, p in zip(rate, peak, strict=True))
            rows.append(
                f"| {name} | {U} | {1e3 * min(t['exact']):.2f} | {1e3 * min(t['fca']):.2f} | "
                f"{1e3 * min(t['loop']):.1f} | {median_ratio(t['loop'], t['exact']):.1f}x | "
                f"{median_ratio(t['exact'], t['fca']):.2f}x | {max(rate):.1f} | "
                f"{max(peak):.0f} | {100 * share:.0f}% |"
            )
    print("ms: fastest round's time per call; ratios: median over rounds of one round's ratio\n")
    print(
        "| masks | patterns | exact ms | FCA ms | numpy loop ms | loop/exact | exact/FCA "
        "| exact GFLOP/s | matmul GFLOP/s | exact/matmul rate |"
    )
    print("|" + "---|" * 10)
    print("\n".join(rows))
    print("\ngoals: loop/exact >= 2x; quarters exact/FCA <= 2x; random exact >= 30% of matmul")


if __name__ == "__main__":
    main()
