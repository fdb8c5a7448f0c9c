r"""The conditional variational autoencoder for structured output prediction (Sohn, Lee & Yan
2015, "Learning Structured Output Representation using Deep Conditional Generative Models").

.. math::
    p_\theta(z \mid x) = \mathcal{N}\big(\mu_p(x, \hat y), \operatorname{diag}\sigma_p^2(x, \hat y)
    \big), \qquad
    p_\theta(y \mid x, z) = \operatorname{Bernoulli}\big(\operatorname{sigmoid}
    g_\theta(x, \hat y, z)\big) \ \text{or}\ \mathcal{N}\big(g_\theta(x, \hat y, z),
    \operatorname{diag}\sigma^2\big),

    q_\phi(z \mid x, y) = \mathcal{N}\big(\mu_q(x, y), \operatorname{diag}\sigma_q^2(x, y)\big),

with :math:`\hat y = f(x)` the prediction of a deterministic baseline network (the paper's
recurrent connection: the baseline's output feeds the prior and generation networks), trained
first and then held fixed (:func:`train_baseline`). The paper's objectives are three bounds
on the conditional log-likelihood :math:`\log p(y \mid x)`, all through :func:`~pgm3d.inference.
fit` with the input ``x`` as the context:

- CVAE (eq. 4): the ELBO, ``fit(cvae, y, "elbo", context={"x": x})``;
- GSNN (eq. 7): :math:`\mathbb{E}_{p(z \mid x)}[\log p(y \mid x, z)]`, the same ELBO with the
  prior network as the guide (the KL term is then zero): ``guide=cvae.prior_guide``;
- hybrid (eq. 8): :math:`\alpha\,\mathcal{L}_{CVAE} + (1 - \alpha)\,\mathcal{L}_{GSNN}`:
  ``fit(cvae, y, cvae.hybrid(alpha), context={"x": x})``;

and any of them with the paper's input-omission noise, ``context_noise=CVAE.input_omission(p)``.

The conditional log-likelihood (the paper's CLL) is :func:`~pgm3d.inference.log_likelihood`
with the context, by importance sampling from :math:`q(z \mid x, y)` (its first estimator) or,
with ``guide=cvae.prior_guide``, by Monte Carlo from the prior (its second).
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from pgm3d.contract import ContractError
from pgm3d.missing import clean_missing
from pgm3d.models.base import Model, check_n, draw_observations
from pgm3d.models.guides import mlp
from pgm3d.models.keep_best import KeepBest

__all__ = ["CVAE", "BaselineNet", "train_baseline"]


class BaselineNet(nn.Module):
    """The deterministic baseline :math:`\\hat y = f(x)`: an MLP with ReLU hidden layers whose
    output is a mean of ``y`` (probabilities for ``"bernoulli"``)."""

    def __init__(self, x_dim: int, y_dim: int, hidden=(256, 256), likelihood="bernoulli"):
        super().__init__()
        _check_likelihood(likelihood)
        self.likelihood = likelihood
        self.net = mlp([x_dim, *hidden, y_dim])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def loss(self, x, y, mask=None) -> torch.Tensor:
        """Cross-entropy (Bernoulli) or squared error (Gaussian) over observed entries."""
        out = self.net(x)
        if self.likelihood == "bernoulli":
            err = nn.functional.binary_cross_entropy_with_logits(out, y, reduction="none")
        else:
            err = (out - y) ** 2
        m = torch.ones_like(y) if mask is None else mask.to(y.dtype)
        return (err * m).sum() / m.sum().clamp_min(1)


def train_baseline(
    x, y, *, mask=None, hidden=(256, 256), likelihood="bernoulli", epochs=30, batch_size=128,
    lr=1e-3, seed=0, valid=None, patience=5,
) -> BaselineNet:  # fmt: skip
    """Train :class:`BaselineNet` on pairs ``(x, y)`` by Adam on its loss; returns it in eval
    mode (the paper's baseline NN, and the CVAE's :math:`\\hat y`).

    :param valid: ``(x, y, mask)`` validation pairs: keep the weights of the lowest validation
        loss and stop after ``patience`` epochs without improvement (early stopping).
    """
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
    torch.manual_seed(seed)
    net = BaselineNet(x.shape[-1], y.shape[-1], hidden, likelihood).to(x)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    keep = KeepBest(net, patience)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g).to(x.device)
        for i in range(0, len(x), batch_size):
            rows = order[i : i + batch_size]
            opt.zero_grad()
            net.loss(x[rows], y[rows], None if mask is None else mask[rows]).backward()
            opt.step()
        if valid is not None:
            with torch.no_grad():
                if keep.update(float(net.loss(*valid))):
                    break
    keep.restore()
    return net.eval()


def _check_likelihood(likelihood):
    if likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")


class _Gaussian(nn.Module):
    """An MLP to a diagonal Gaussian (mean, softplus scale)."""

    def __init__(self, sizes):
        super().__init__()
        *body, out = sizes
        self.net = mlp([*body, 2 * out])
        self.out = out

    def forward(self, h):
        o = self.net(h)
        return o[..., : self.out], nn.functional.softplus(o[..., self.out :]) + 1e-4


class CVAE(Model, PyroModule):
    """Conditional VAE: model ``model(y, mask=None, x=None)`` observes ``"y"`` given the input
    ``x`` (the context); guide ``guide(y, mask=None, x=None)`` is the recognition network.

    :param int x_dim: input size. :param int y_dim: output size. :param int latent_dim: ``K``.
    :param hidden: hidden sizes of each of the three networks (ReLU).
    :param str likelihood: ``"bernoulli"`` (binary or [0, 1] outputs) or ``"gaussian"``.
    :param baseline: a trained :class:`BaselineNet` whose prediction :math:`\\hat y` feeds the
        prior and generation networks (the paper's recurrent connection; its weights are not
        trained further), or None for plain :math:`p(z \\mid x)`, :math:`p(y \\mid x, z)`.
    :param float min_scale: floor of the Gaussian output scale.
    """

    pgm3d_contract = {"obs": "y", "plate": "data", "data_arg": "y", "context": ("x",)}

    def __init__(
        self, x_dim: int, y_dim: int, latent_dim: int = 16, hidden=(256, 256),
        likelihood: str = "bernoulli", baseline: BaselineNet | None = None,
        min_scale: float = 1e-3,
    ):  # fmt: skip
        super().__init__()
        _check_likelihood(likelihood)
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        self.x_dim, self.y_dim, self.latent_dim = x_dim, y_dim, latent_dim
        self.data_dim, self.likelihood, self.min_scale = y_dim, likelihood, min_scale
        self.baseline = baseline
        if baseline is not None:
            baseline.requires_grad_(False)
        cond = x_dim + (y_dim if baseline is not None else 0)
        self.prior_net = _Gaussian([cond, *hidden, latent_dim])
        self.recognition_net = _Gaussian([x_dim + 2 * y_dim, *hidden, latent_dim])
        self.generation_net = mlp([cond + latent_dim, *hidden, y_dim])
        self.log_scale = nn.Parameter(torch.zeros(y_dim))

    def _conditioning(self, x):
        if x is None:
            raise ContractError(
                "the CVAE needs its conditioning input: pass context={'x': x} (fit, "
                "log_likelihood, complete) or x=... (model, guide, sample)"
            )
        if x.shape[-1] != self.x_dim:
            raise ValueError(f"x must have {self.x_dim} columns, got {x.shape[-1]}")
        if self.baseline is None:
            return x
        with torch.no_grad():
            return torch.cat([x, self.baseline(x)], -1)

    def prior(self, x: torch.Tensor) -> dist.Independent:
        """:math:`p(z \\mid x)` with batch ``(B,)`` and event ``(K,)``."""
        loc, scale = self.prior_net(self._conditioning(x))
        return dist.Normal(loc, scale).to_event(1)

    def decode(self, z: torch.Tensor, x: torch.Tensor) -> dist.Independent:
        """:math:`p(y \\mid x, z)`; ``z`` may carry leading sample dimensions."""
        c = self._conditioning(x).expand(*z.shape[:-1], -1)
        out = self.generation_net(torch.cat([c, z], -1))
        if self.likelihood == "bernoulli":
            return dist.Bernoulli(logits=out, validate_args=False).to_event(1)
        scale = self.min_scale + nn.functional.softplus(self.log_scale)
        return dist.Normal(out, scale, validate_args=False).to_event(1)

    def recognition(self, y, mask, x) -> dist.Independent:
        """:math:`q(z \\mid x, y_v)`: reads the zero-filled output and its mask."""
        m = torch.ones_like(y) if mask is None else mask.to(y.dtype)
        loc, scale = self.recognition_net(torch.cat([x, clean_missing(y, mask), m], -1))
        return dist.Normal(loc, scale).to_event(1)

    def model(self, y, mask=None, x=None):
        self._conditioning(x)  # the clear error first
        with pyro.plate("data", y.shape[0]):
            z = pyro.sample("z", self.prior(x))
            py = self.decode(z, x).base_dist
            if mask is not None:
                py = py.mask(mask)
            pyro.sample("y", py.to_event(1), obs=clean_missing(y, mask))
        return z

    def guide(self, y, mask=None, x=None):
        self._conditioning(x)
        with pyro.plate("data", y.shape[0]):
            return pyro.sample("z", self.recognition(y, mask, x))

    def prior_guide(self, y, mask=None, x=None):
        """The prior network as a guide: training with it is the GSNN (eq. 7), and
        :func:`~pgm3d.inference.log_likelihood` with it is the paper's Monte Carlo CLL."""
        with pyro.plate("data", y.shape[0]):
            return pyro.sample("z", self.prior(x))

    def hybrid(self, alpha: float = 0.5, num_particles: int = 1):
        """The hybrid objective (eq. 8), :math:`\\alpha\\,\\mathcal L_{CVAE} + (1 - \\alpha)
        \\mathcal L_{GSNN}`, as an objective for :func:`~pgm3d.inference.fit`."""
        from pgm3d.inference.hybrid import HybridObjective

        return HybridObjective(self, self.prior_guide, alpha=alpha, num_particles=num_particles)

    @staticmethod
    def input_omission(p: float = 0.4, fill: float = 0.0):
        """The paper's noise injection (§4.3): during training each input entry is replaced by
        ``fill`` with probability ``p``, the same for model and guide within a step; pass the
        result as ``fit(..., context_noise=...)``."""
        if not (isinstance(p, int | float) and 0 <= p < 1):
            raise ValueError(f"p must be a probability in [0, 1), got {p!r}")

        def omit(ctx: dict, generator: torch.Generator) -> dict:
            x = ctx["x"]
            u = torch.rand(x.shape, generator=generator).to(x.device)
            return {**ctx, "x": torch.where(u < p, torch.full_like(x, fill), x)}

        return omit

    def sample(self, n: int = 1, *, x=None, generator=None, mean=False, return_latents=False):
        """``n`` outputs per input row: ``(n, B, y_dim)`` draws of :math:`y \\sim p(y \\mid x)`
        (with ``mean=True`` the output means at the drawn ``z``)."""
        check_n(n)
        c = self._conditioning(x)
        with torch.no_grad():
            loc, scale = self.prior_net(c)
            eps = torch.randn((n, *loc.shape), generator=generator, dtype=loc.dtype,
                              device=loc.device)  # fmt: skip
            z = loc + scale * eps
            y = draw_observations(self.decode(z, x).base_dist, mean=mean, generator=generator)
        return (y, z) if return_latents else y
