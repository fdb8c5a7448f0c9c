"""The README's Python example: declare a model, fit it, save and reload it, swap the
inference back end with one argument, and evaluate the posteriors.

    python examples/quickstart.py
"""

import os

import torch

import pgm3d
from pgm3d.data import open_data, random_mask
from pgm3d.evaluation import evaluate_posteriors, log_likelihood_per_dim
from pgm3d.inference import complete, fit
from pgm3d.models import VAE

data = open_data("digits", seed=0)  # 1,438 training and 359 test images, 8x8, in [-1, 1]
train, test = data.train.float(), data.test[:100].float()
model = VAE(64, latent_dim=8, hidden=(128,))  # a Pyro model/guide pair: p(z) p(x|z), q(z|x)
fit(model, train, "iwae", num_particles=8, epochs=30, seed=0)  # or elbo, dreg, rws, meanfield
path = os.path.join(os.environ.get("PGM3D_EXAMPLES_OUT", "."), "vae.pt")
pgm3d.save(model, path)
model = pgm3d.load(path)  # works with every back end, no constructor arguments needed
mask = random_mask(test.shape, 0.5, generator=torch.Generator().manual_seed(0))  # True = seen
for method in ["pseudo_gibbs", "mwg", "importance"]:  # one argument swaps the back end
    done = complete(model, test, mask, method, chains=4, seed=0)
    print(f"{method:>12}: imputation MSE {((done.x - test)[~mask] ** 2).mean():.4f}")
ll, _ = log_likelihood_per_dim(model, test, torch.ones_like(mask), num_samples=1000)
print(f"test log-likelihood >= {ll.mean():.3f} nats per pixel (IWAE bound, K = 1000)")
print(evaluate_posteriors(model, test, mask, ["pseudo_gibbs", "mwg", "importance"], x_true=test))
