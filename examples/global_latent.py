"""A model with a global latent: a mean ``mu`` shared by every row (outside the data plate) and
a local factor per row,

    mu ~ N(0, tau^2 I),   z_n ~ N(0, I),   x_n ~ N(mu + W z_n, s^2 I),

with ``W``, ``tau`` and ``s`` known. The guide is q(mu) = N(m, L L^T) and, given ``mu``, the
exact posterior of each ``z_n`` given its observed entries (the guide takes the optional
``mask`` keyword to know which they are), so the ELBO's only gap is KL(q(mu) || p(mu | X)) and
its optimum is the conjugate posterior of ``mu``. pgm3d scales the local terms of a minibatch
by N/B and the global KL once, so minibatch training lands on that posterior;
``log_likelihood`` then gives the posterior predictive density of held-out rows (or the
density at the point estimate), and the completion back ends condition on the point estimate.

    python examples/global_latent.py
"""

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn


class GlobalMean(PyroModule):
    """The model above, with a full-covariance Gaussian ``q(mu)`` (``loc``, ``tril``)."""

    def __init__(self, W: torch.Tensor, tau: float, s: float):
        super().__init__()
        self.register_buffer("W", W)
        self.tau, self.s = tau, s
        D = W.shape[0]
        self.loc = nn.Parameter(torch.zeros(D, dtype=W.dtype))
        self.raw_tril = nn.Parameter(torch.zeros(D, D, dtype=W.dtype))

    def tril(self) -> torch.Tensor:
        """L: lower triangular with a positive diagonal (0.1 at initialisation)."""
        diag = torch.diagonal(self.raw_tril).exp() * 0.1
        return self.raw_tril.tril(-1) + torch.diag_embed(diag)

    def model(self, x):
        D, K = self.W.shape
        mu = pyro.sample("mu", dist.Normal(x.new_zeros(D), self.tau).to_event(1))
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(K), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(mu + z @ self.W.T, self.s).to_event(1), obs=x)

    def guide(self, x, mask=None):
        mu = pyro.sample("mu", dist.MultivariateNormal(self.loc, scale_tril=self.tril()))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", self.local_posterior(x, mu, mask))

    def local_posterior(self, x, mu, mask=None) -> dist.MultivariateNormal:
        """p(z_n | x_n observed, mu): precision I + W_v^T W_v / s^2, mean from the residual."""
        m = torch.ones_like(x) if mask is None else mask.to(x.dtype)
        Wv = self.W * m[..., None]  # (B, D, K): rows of W for the observed entries
        K = self.W.shape[1]
        precision = torch.eye(K, dtype=x.dtype) + Wv.mT @ Wv / self.s**2
        residual = ((x - mu) * m)[..., None]  # mu may carry particle dims in front
        loc = torch.linalg.solve(precision, Wv.mT @ residual / self.s**2)[..., 0]
        return dist.MultivariateNormal(loc, precision_matrix=precision)

    def marginal_covariance(self) -> torch.Tensor:
        """C = W W^T + s^2 I, the covariance of x_n given mu."""
        D = self.W.shape[0]
        return self.W @ self.W.T + self.s**2 * torch.eye(D, dtype=self.W.dtype)

    def exact_posterior(self, x: torch.Tensor) -> dist.MultivariateNormal:
        """p(mu | X): precision I / tau^2 + N C^-1, mean P^-1 C^-1 sum_n x_n."""
        D = self.W.shape[0]
        C_inv = torch.linalg.inv(self.marginal_covariance())
        P = torch.eye(D, dtype=x.dtype) / self.tau**2 + x.shape[0] * C_inv
        cov = torch.linalg.inv(P)
        return dist.MultivariateNormal(cov @ C_inv @ x.sum(0), covariance_matrix=cov)


def simulate(n: int, D: int = 4, K: int = 2, seed: int = 0):
    """Rows of the model above at ``tau = 2``, ``s = 0.5`` (float64), and the model."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(D, K, generator=g, dtype=torch.float64)
    model = GlobalMean(W, tau=2.0, s=0.5)
    mu = 2.0 * torch.randn(D, generator=g, dtype=torch.float64)
    z = torch.randn(n, K, generator=g, dtype=torch.float64)
    x = mu + z @ W.T + 0.5 * torch.randn(n, D, generator=g, dtype=torch.float64)
    return model, x


def main():
    from pgm3d import FactorAnalysis
    from pgm3d.data import random_mask
    from pgm3d.inference import complete, fit, log_likelihood

    torch.manual_seed(0)
    model, x = simulate(600)
    train, test = x[:500], x[500:]
    exact = model.exact_posterior(train)
    fit(model, train, "elbo", num_particles=8, epochs=100, batch_size=50, lr=0.1,
        lr_decay=0.95, progress=False)  # fmt: skip
    with torch.no_grad():
        L = model.tril()
        q_sd, p_sd = (L @ L.T).diagonal().sqrt(), exact.covariance_matrix.diagonal().sqrt()
        print("Posterior of the global mean after minibatch ELBO training (50 of 500 rows):\n")
        print("| coordinate | exact mean | q mean | exact sd | q sd |\n|---|---:|---:|---:|---:|")
        for d in range(len(q_sd)):
            print(
                f"| {d} | {exact.mean[d]:.4f} | {model.loc[d]:.4f} | {p_sd[d]:.4f} | "
                f"{q_sd[d]:.4f} |"
            )
        C, S = model.marginal_covariance(), L @ L.T
        m = model.loc.detach()
        closed = {
            "predictive": dist.MultivariateNormal(m, covariance_matrix=C + S).log_prob(test),
            "point": dist.MultivariateNormal(m, covariance_matrix=C).log_prob(test),
        }
    print("\nHeld-out log-likelihood (nats/row), pgm3d's estimate (K=2000) vs the closed form:\n")
    print("| global_latents | pgm3d | closed form |\n|---|---:|---:|")
    for kind, value in closed.items():
        est = log_likelihood(model, test, num_samples=2000, global_latents=kind).mean()
        print(f"| {kind} | {est:.4f} | {value.mean():.4f} |")
    mask = random_mask(test.shape, 0.4, generator=torch.Generator().manual_seed(1))
    given = FactorAnalysis(model.W, m, torch.full_like(m, model.s**2))
    ref = complete(given, test, mask, "exact").x  # E[x_m | x_v, mu = q's mean]
    print("\nCompletion of 40% hidden entries, RMS distance to E[x_m | x_v, mu = m]:")
    for method in ["importance", "mwg", "nuts"]:
        opts = {"chains": 2, "warmup": 50} if method == "nuts" else {}
        done = complete(model, test, mask, method, seed=0, **opts)
        print(f"  {method:>10}: {(done.x - ref)[~mask].pow(2).mean().sqrt():.4f}")
    print(
        "\n(importance: 1,000 weighted proposals; MwG: 4 chains x 25 draws, which alternate z and\n"
        "x_m and so mix slowly when the noise s is small; NUTS: 2 chains x 25 draws of z | x_v)"
    )


if __name__ == "__main__":
    main()
