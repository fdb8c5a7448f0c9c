"""Fit PPCA to 8x8 digits, hide half the pixels, and compare missing-data inference methods.

python examples/missing_data.py
"""

import functools

import torch

from pgm3d import PPCA, DenoisingEncoder, FactorAnalysis, complete
from pgm3d.data.images import load_digits, train_test_split
from pgm3d.data.masks import random_mask
from pgm3d.evaluation import imputation_mse

g = torch.Generator().manual_seed(0)
train, test = train_test_split(load_digits().x, 0.2, generator=g)

# two linear-Gaussian models: closed-form PPCA and factor analysis by EM
models = {
    "ppca": PPCA.fit(train, explained_variance=0.9),
    "fa": FactorAnalysis.fit(train, latent_dim=20, tol=1e-5),
}

sampler = functools.partial(random_mask, p_missing=0.5)  # True = observed
mask = sampler(test.shape, generator=g)
x = torch.where(mask, test, torch.nan)  # missing entries may hold anything, NaN included

for name, model in models.items():
    de = DenoisingEncoder.fit(model, train, sampler, generator=g)
    print(
        f"{name} (K={model.latent_dim}), test log-lik of observed pixels: "
        f"{model.log_likelihood(x, mask).mean():.1f} nats/image"
    )
    for method in ["mean", "fca", "sca", de, "exact"]:
        result = complete(model, x, mask, method=method)  # one argument swaps the back end
        err = imputation_mse(test, result.x, mask)
        print(f"  {result.method:6s} MSE x 100 = {100 * err.mean:6.2f} ± {100 * err.stderr:.2f}")
