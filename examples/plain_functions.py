"""A model written as two plain functions, its parameters in Pyro's param store: probabilistic
PCA with ``pyro.param`` loadings and noise and a linear encoder registered by ``pyro.module``.
pgm3d finds and trains every one of them, and the fit lands on the closed form (Tipping &
Bishop 1999) that pgm3d's own ``PPCA.fit`` computes.

    python examples/plain_functions.py
"""

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.distributions import constraints

D, K = 10, 2
encoder = nn.Linear(D, 2 * K)  # an amortised guide: q(z | x) = N(A x + b, diag(s^2))


def model(x):
    W = pyro.param("W", lambda: 0.1 * torch.randn(D, K))
    mu = pyro.param("mu", lambda: torch.zeros(D))
    sigma = pyro.param("sigma", lambda: torch.tensor(1.0), constraint=constraints.positive)
    with pyro.plate("rows", x.shape[0]):
        z = pyro.sample("z", dist.Normal(torch.zeros(K), 1.0).to_event(1))
        pyro.sample("x", dist.Normal(z @ W.T + mu, sigma).to_event(1), obs=x)


def guide(x):
    pyro.module("encoder", encoder)
    out = encoder(x)
    with pyro.plate("rows", x.shape[0]):
        pyro.sample("z", dist.Normal(out[:, :K], out[:, K:].exp()).to_event(1))


def main():
    from pgm3d.inference import fit, log_likelihood
    from pgm3d.models import PPCA

    torch.manual_seed(0)
    truth = PPCA.random(D, K, sigma2=0.3, generator=torch.Generator().manual_seed(0))
    x = truth.sample(2000, generator=torch.Generator().manual_seed(1))
    closed = PPCA.fit(x, latent_dim=K)
    with torch.no_grad():
        exact = closed.log_likelihood(x).mean()
    print("| fit | sigma^2 | log-likelihood (nats/row) |\n|---|---:|---:|")
    print(f"| closed form (PPCA.fit) | {closed.sigma2.item():.4f} | {exact:.3f} (exact) |")
    for objective in ["elbo", "iwae"]:
        pyro.clear_param_store()
        torch.manual_seed(0)
        encoder.reset_parameters()
        fit((model, guide), x, objective, num_particles=4, epochs=60, lr=2e-2, lr_decay=0.95,
            batch_size=200, progress=False)  # fmt: skip
        sigma2 = pyro.param("sigma").item() ** 2
        ll = log_likelihood((model, guide), x, num_samples=200).mean()
        print(f"| pgm3d fit, {objective} | {sigma2:.4f} | {ll:.3f} (IWAE, K=200) |")
    names = sorted(pyro.get_param_store().keys())
    print(f"\ntrained param-store entries: {', '.join(names)}")


if __name__ == "__main__":
    main()
