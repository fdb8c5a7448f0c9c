"""Write only the model: Pyro's VAE *model* (``examples/pyro_vae.py``; its hand-written guide is
never used) gets an amortised, mask-aware guide from ``pgm3d.auto``. Trained on digits with half
of every training image hidden, fresh each step, it then gives test log-likelihoods, completes
half-hidden test digits with the back ends, and fills the comparison table — one argument
swapping the posterior family.

    python examples/autoguide.py
"""

import functools
import os
import sys

import pyro
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pyro_vae import VAE

import pgm3d
from pgm3d.data import open_data, random_mask
from pgm3d.evaluation import evaluate_posteriors
from pgm3d.inference import fit, log_likelihood


def main():
    split = open_data("digits", seed=0)
    train, test = (split.train.float() + 1) / 2, (split.test[:60].float() + 1) / 2
    hide_half = functools.partial(random_mask, p_missing=0.5)
    mask = hide_half(test.shape, generator=torch.Generator().manual_seed(1))
    print("| guide family | final bound | test log-lik, K=200 | completion MSE (importance) |")
    print("|---|---:|---:|---:|")
    for family in ["diag", "full", "flow"]:
        pyro.clear_param_store()
        torch.manual_seed(0)
        vae = VAE(z_dim=8, hidden_dim=64)
        pair = pgm3d.auto(vae.model, family, hidden=(128,))  # the model function alone
        history = fit(pair, train, "elbo", mask_sampler=hide_half, num_particles=2,
                      epochs=8, lr=3e-3, progress=False)  # fmt: skip
        ll = log_likelihood(pair, test, num_samples=200).mean()
        table = evaluate_posteriors(
            pair, test, mask, ["importance", "mwg"], x_true=test,
            options={"importance": {"seed": 0}, "mwg": {"warmup": 30, "thin": 2, "seed": 0}},
            num_khat_samples=100,
        )  # fmt: skip
        mse = table.rows["importance"]["mse"]
        print(f"| {family} | {history.bound[-1]:.2f} | {ll:.2f} | {mse:.4f} |")
    print(f"\nThe comparison table for the last one ({family}):\n\n{table.to_markdown()}")


if __name__ == "__main__":
    main()
