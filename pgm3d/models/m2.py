r"""The semi-supervised generative model M2 (Kingma, Rezende, Mohamed & Welling 2014).

.. math::
    p(y) = \operatorname{Cat}(\pi), \quad p(z) = \mathcal{N}(0, I), \quad
    p_\theta(x \mid y, z) = f(x; y, z, \theta),

    q_\phi(y \mid x) = \operatorname{Cat}(\pi_\phi(x)), \quad
    q_\phi(z \mid x, y) = \mathcal{N}(\mu_\phi(x, y), \operatorname{diag}\sigma^2_\phi(x, y)),

trained on rows with and without labels by

.. math::
    \mathcal{J}^\alpha = \sum_{\text{labelled}} \mathcal{L}(x, y)
        + \sum_{\text{unlabelled}} \mathcal{U}(x)
        + \alpha \sum_{\text{labelled}} \log q_\phi(y \mid x)

(eqs. 6–9), with :math:`\mathcal{U}(x)` summing over the labels exactly: the label is a site
observed where given and latent elsewhere (:mod:`pgm3d.models.partial`), and the objective
``"enum"`` enumerates it where latent. The paper's networks: one hidden layer of 500 softplus
units in every MLP, a latent of 50, :math:`\alpha = 0.1 N`. The classifier
:math:`q_\phi(y \mid x)` is the model's prediction (:meth:`M2.classify`).

``fit(m2, x, "enum", context={"y": y})`` with ``y`` a long tensor holding
:data:`~pgm3d.models.partial.UNKNOWN` (-1) for unlabelled rows.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn
from torch.nn.functional import one_hot

from pgm3d.contract import ContractError
from pgm3d.missing import clean_missing
from pgm3d.models.base import Model, check_n, draw_observations
from pgm3d.models.guides import mlp
from pgm3d.models.partial import check_partial, guess_where_unknown, observe_where_known

__all__ = ["M2"]


class M2(Model, PyroModule):
    """Model ``model(x, mask=None, y=None)`` and guide with the classifier ``q(y | x)``.

    :param int data_dim: ``D``. :param int num_classes: ``C``.
    :param int latent_dim: ``K`` (the paper's 50).
    :param hidden: hidden sizes of every MLP (the paper's one layer of 500).
    :param float alpha: weight of the classification term :math:`\\alpha` per labelled row (the
        paper's :math:`0.1 N`, ``N`` the number of training rows); a training term only.
    :param str likelihood: ``"bernoulli"`` (the paper's; grey levels in ``[0, 1]`` are scored
        by cross-entropy) or ``"gaussian"`` (learned per-dimension scale).
    """

    pgm3d_contract = {"obs": "x", "plate": "data", "data_arg": "x", "context": ("y",)}

    def __init__(self, data_dim: int, num_classes: int, latent_dim: int = 50, hidden=(500,),
                 alpha: float = 0.0, likelihood: str = "bernoulli",
                 min_scale: float = 1e-3):  # fmt: skip
        super().__init__()
        if likelihood not in ("gaussian", "bernoulli"):
            raise ValueError(f"likelihood must be 'gaussian' or 'bernoulli', got {likelihood!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.data_dim, self.num_classes, self.latent_dim = data_dim, num_classes, latent_dim
        self.alpha, self.likelihood, self.min_scale = float(alpha), likelihood, min_scale
        hidden = tuple(hidden)
        self.classifier = mlp([2 * data_dim, *hidden, num_classes], activation=nn.Softplus)
        self.encoder = mlp([2 * data_dim + num_classes, *hidden, 2 * latent_dim], nn.Softplus)
        self.decoder = mlp([latent_dim + num_classes, *hidden, data_dim], nn.Softplus)
        self.log_scale = nn.Parameter(torch.zeros(data_dim))

    # ------------------------------------------------------------------ networks
    def _read(self, x, mask):
        """The data the networks see: zero where missing, and the mask (``None``: all seen)."""
        m = torch.ones_like(x) if mask is None else mask.to(x.dtype)
        return torch.cat([clean_missing(x, mask), m], -1)

    def label_distribution(self, x, mask=None) -> dist.Categorical:
        """:math:`q_\\phi(y \\mid x)`, batch ``(B,)``."""
        return dist.Categorical(logits=self.classifier(self._read(x, mask)))

    def classify(self, x, mask=None) -> torch.Tensor:
        """The most probable label under :math:`q_\\phi(y \\mid x)`, ``(B,)`` long."""
        with torch.no_grad():
            return self.label_distribution(x, mask).logits.argmax(-1)

    def latent_distribution(self, x, y, mask=None) -> dist.Independent:
        """:math:`q_\\phi(z \\mid x, y)` for labels ``y`` of shape ``(..., B)``."""
        h = self._read(x, mask)
        onehot = one_hot(y, self.num_classes).to(x.dtype)
        out = self.encoder(torch.cat([h.expand(*onehot.shape[:-1], -1), onehot], -1))
        K = self.latent_dim
        return dist.Normal(out[..., :K], nn.functional.softplus(out[..., K:]) + 1e-4).to_event(1)

    def decode(self, z, y) -> dist.Distribution:
        """:math:`p_\\theta(x \\mid y, z)`, batch ``(..., B)`` and event ``(D,)`` (not yet
        reinterpreted: the caller masks per entry)."""
        onehot = one_hot(y, self.num_classes).to(z.dtype)
        out = self.decoder(torch.cat([z, onehot.expand(*z.shape[:-1], -1)], -1))
        if self.likelihood == "bernoulli":
            return dist.Bernoulli(logits=out, validate_args=False)
        scale = self.min_scale + nn.functional.softplus(self.log_scale)
        return dist.Normal(out, scale, validate_args=False)

    def _labels(self, x, y):
        if y is None:
            raise ContractError(
                "M2 needs the labels: pass context={'y': y} with y a long tensor, -1 for rows "
                "without a label (all -1 to treat every label as unknown)"
            )
        if y.shape != x.shape[:1]:
            raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
        return check_partial(y, self.num_classes, "y")

    # ------------------------------------------------------------------ Pyro pair
    def model(self, x, mask=None, y=None):
        known = self._labels(x, y)
        zero = x.new_zeros(self.latent_dim)
        prior = dist.Categorical(logits=x.new_zeros(self.num_classes))
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            label = observe_where_known("y", prior, y, known)
            px = self.decode(z, label)
            px = px if mask is None else px.mask(mask)
            pyro.sample("x", px.to_event(1), obs=clean_missing(x, mask))
            if self.training and self.alpha > 0 and bool(known.any()):
                # eq. 9: the classifier also learns from the labels (a training term only)
                log_q = self.label_distribution(x, mask).log_prob(y.clamp_min(0))
                pyro.factor("classification", self.alpha * log_q * known)
        return z

    def guide(self, x, mask=None, y=None):
        known = self._labels(x, y)
        with pyro.plate("data", x.shape[0]):
            label = guess_where_unknown("y", self.label_distribution(x, mask), y, known)
            return pyro.sample("z", self.latent_distribution(x, label, mask))

    # ------------------------------------------------------------------ generation
    def sample(self, n: int, *, y=None, z=None, generator=None, mean: bool = False):
        """``n`` draws ``(n, D)`` with labels ``y`` (``(n,)``; uniform draws if ``None``) and
        latents ``z`` (``(n, K)``; prior draws if ``None``): fix ``y`` and vary ``z`` for the
        paper's analogies (Fig. 1), or the reverse."""
        check_n(n)
        p = next(self.parameters())
        with torch.no_grad():
            if z is None:
                z = torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype)
            if y is None:
                y = torch.randint(self.num_classes, (n,), generator=generator)
            z, y = z.to(p), torch.as_tensor(y, device=p.device).long()
            if z.shape != (n, self.latent_dim) or y.shape != (n,):
                raise ValueError(
                    f"z must be ({n}, {self.latent_dim}) and y ({n},), got {tuple(z.shape)} "
                    f"and {tuple(y.shape)}"
                )
            return draw_observations(self.decode(z, y), mean=mean, generator=generator)
