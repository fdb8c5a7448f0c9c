"""Declare a small VAE, train it with three objectives, complete masked digits with four
back ends, and compare them — the model is written once; the inference is one argument.

    python examples/swap_inference.py
"""

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pgm3d.data.images import load_digits, train_test_split
from pgm3d.data.masks import quarter_mask
from pgm3d.evaluation import evaluate_posteriors
from pgm3d.inference import fit, log_likelihood


class TinyVAE(pyro.nn.PyroModule):
    """p(z) = N(0, I), p(x | z) = N(f(z), s^2); q(z | x_v) reads zero-filled x and its mask."""

    def __init__(self, D=64, K=4, H=64):
        super().__init__()
        self.data_dim = D
        self.f = nn.Sequential(nn.Linear(K, H), nn.Tanh(), nn.Linear(H, D))
        self.g = nn.Sequential(nn.Linear(2 * D, H), nn.Tanh(), nn.Linear(H, 2 * K))
        self.log_s = nn.Parameter(torch.full((D,), -1.0))
        self.K = K

    def decode(self, z):
        return dist.Normal(self.f(z), self.log_s.exp()).to_event(1)

    def model(self, x, mask=None):
        m = torch.ones_like(x, dtype=torch.bool) if mask is None else mask
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(self.K), 1.0).to_event(1))
            px = dist.Normal(self.f(z), self.log_s.exp()).mask(m).to_event(1)
            pyro.sample("x", px, obs=torch.nan_to_num(x) * m)  # missing entries: zero, masked

    def guide(self, x, mask=None):
        m = torch.ones_like(x) if mask is None else mask.to(x.dtype)
        h = self.g(torch.cat([torch.nan_to_num(x) * m, m], -1))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(h[:, : self.K], h[:, self.K :].exp()).to_event(1))


torch.manual_seed(0)
train, test = train_test_split(
    load_digits(dtype=torch.float32).x, 0.2, generator=torch.Generator().manual_seed(0)
)
test = test[:40]

print("| objective | final bound (nats/image) | test log-lik, IWAE K=200 |\n|---|---|---|")
for objective in ["elbo", "iwae", "dreg"]:
    torch.manual_seed(0)
    vae = TinyVAE()
    history = fit(vae, train, objective, num_particles=4, epochs=20, lr=3e-3, progress=False)
    ll = log_likelihood(vae, test, num_samples=200).mean()
    print(f"| {objective} | {history.bound[-1]:.1f} | {ll:.1f} |")

mask = quarter_mask(test.shape, (8, 8), generator=torch.Generator().manual_seed(1))
x = torch.where(mask, test, torch.nan)
table = evaluate_posteriors(
    vae,
    x,
    mask,
    ["pseudo_gibbs", "mwg", "importance", "nuts"],
    x_true=test,
    options={
        "pseudo_gibbs": {"warmup": 50, "thin": 2, "num_samples": 25, "seed": 0},
        "mwg": {"warmup": 50, "thin": 2, "num_samples": 25, "seed": 0},
        "importance": {"num_proposals": 500, "seed": 0},
        "nuts": {"chains": 2, "warmup": 50, "num_samples": 25, "seed": 0},
    },
    num_khat_samples=200,
)
print("\nCompleting the missing quarter of 40 test digits (DReG-trained VAE):\n")
print(table.to_markdown())
