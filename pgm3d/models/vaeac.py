r"""The variational autoencoder with arbitrary conditioning (Ivanov, Figurnov & Vetrov 2019).

One model for every mask :math:`b` (1 = unobserved, to be predicted):

.. math::
    p_{\psi,\theta}(x_b \mid x_{1-b}, b) = \int p_\theta(x_b \mid z, x_{1-b}, b)\,
        p_\psi(z \mid x_{1-b}, b)\, dz,

    \mathcal{L} = \mathbb{E}_{q_\phi(z \mid x, b)}\big[\log p_\theta(x_b \mid z, x_{1-b}, b)\big]
        - \mathrm{KL}\big(q_\phi(z \mid x, b)\,\|\,p_\psi(z \mid x_{1-b}, b)\big)
        + R(\mu_\psi, \sigma_\psi),

with a prior network that reads only the observed part and the mask, a proposal network that
also reads :math:`x_b`, a generative network that takes the prior network's hidden activations
through skip connections (the paper's U-Net-like links), and the prior regulariser
:math:`R = -\mu_\psi^2 / (2\sigma_\mu^2) + \sigma_\sigma(\log\sigma_\psi - \sigma_\psi)`
(:math:`\sigma_\mu = 10^4`, :math:`\sigma_\sigma = 10^{-4}`, the paper's) that keeps the
learned prior from drifting. It is trained on random masks drawn for every minibatch:

``fit(vaeac, x, "elbo", mask=observed, context={"b": vaeac.no_mask(x)},
context_noise=vaeac.masks(p=0.5))``

(the mask :math:`b` is the context; the data's own missing entries, ``mask``, are never scored —
the MIWAE-style setting for incomplete training data). Imputation samples
:math:`z \sim p_\psi(z \mid x_o, b)`, then :math:`x_b`, or takes the means: the completion
method ``"vaeac"`` (:func:`pgm3d.inference.complete`).
"""

from __future__ import annotations

import itertools

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from pgm3d.contract import ContractError
from pgm3d.missing import clean_missing
from pgm3d.models.base import Model
from pgm3d.models.guides import mlp

__all__ = ["VAEAC"]

#: the paper's prior regulariser's scales
SIGMA_MU, SIGMA_SIGMA = 1e4, 1e-4


class VAEAC(Model, PyroModule):
    """Model ``model(x, mask=None, b=None)``: the entries with ``b`` True (and observed in the
    data) are predicted from the others; the guide is the proposal network.

    :param int data_dim: ``D``. :param int latent_dim: ``K``.
    :param hidden: hidden sizes of the prior and proposal networks (the generative network
        mirrors them, each layer also taking the prior network's activation of its depth).
    :param str likelihood: ``"gaussian"`` (learned per-dimension scale) or ``"bernoulli"``.
    """

    pgm3d_contract = {"obs": "x", "plate": "data", "data_arg": "x", "context": ("b",)}
    completion_methods = ("vaeac",)

    def __init__(self, data_dim: int, latent_dim: int = 16, hidden=(256, 256),
                 likelihood: str = "gaussian", min_scale: float = 1e-3):  # fmt: skip
        super().__init__()
        if likelihood not in ("gaussian", "bernoulli"):
            raise ValueError(f"likelihood must be 'gaussian' or 'bernoulli', got {likelihood!r}")
        self.data_dim, self.latent_dim, self.likelihood = data_dim, latent_dim, likelihood
        self.min_scale = min_scale
        sizes = [2 * data_dim, *hidden]
        self.prior_layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.prior_out = nn.Linear(sizes[-1], 2 * latent_dim)
        self.proposal = mlp([3 * data_dim, *hidden, 2 * latent_dim])  # fmt: skip
        # generative: z -> reversed hidden sizes, each layer fed the prior's matching activation
        rev = list(reversed(hidden))
        self.gen_layers = nn.ModuleList()
        width = latent_dim
        for h in rev:
            self.gen_layers.append(nn.Linear(width + h, h))
            width = h
        self.gen_out = nn.Linear(width + 2 * data_dim, data_dim)
        self.log_scale = nn.Parameter(torch.zeros(data_dim))
        #: the masks it was trained on, set by :meth:`masks`: ``(kind, p)``
        self.trained_masks: tuple[str, float] | None = None

    # ------------------------------------------------------------------ networks
    def _inputs(self, x, mask, b):
        if b is None:
            raise ContractError(
                "VAEAC needs the mask b of entries to predict: pass context={'b': b} (True = "
                "predict), e.g. context={'b': vaeac.no_mask(x)} with context_noise=vaeac.masks()"
            )
        b = b.to(torch.bool)
        if b.shape != x.shape:
            raise ValueError(f"b must have the data's shape {tuple(x.shape)}, got {tuple(b.shape)}")
        seen = ~b if mask is None else mask & ~b
        return b, seen, torch.cat([clean_missing(x, seen), seen.to(x.dtype)], -1)

    def prior(self, x, mask, b):
        """:math:`p_\\psi(z \\mid x_{1-b}, b)` and the prior network's hidden activations."""
        _, _, h = self._inputs(x, mask, b)
        skips = [h]
        for layer in self.prior_layers:
            h = torch.relu(layer(h))
            skips.append(h)
        out = self.prior_out(h)
        loc, scale = (
            out[..., : self.latent_dim],
            nn.functional.softplus(out[..., self.latent_dim :]),
        )
        return dist.Normal(loc, scale + 1e-4).to_event(1), skips

    def proposal_distribution(self, x, mask, b):
        """:math:`q_\\phi(z \\mid x, b)`: reads every observed entry, the data mask and ``b``."""
        b, _, _ = self._inputs(x, mask, b)
        m = torch.ones_like(x, dtype=torch.bool) if mask is None else mask
        out = self.proposal(torch.cat([clean_missing(x, m), m.to(x.dtype), b.to(x.dtype)], -1))
        loc, scale = (
            out[..., : self.latent_dim],
            nn.functional.softplus(out[..., self.latent_dim :]),
        )
        return dist.Normal(loc, scale + 1e-4).to_event(1)

    def decode(self, z, skips) -> dist.Distribution:
        """:math:`p_\\theta(x \\mid z, x_{1-b}, b)` (batch ``(..., B)``, event ``(D,)``)."""
        h = z
        for layer, skip in zip(self.gen_layers, reversed(skips[1:]), strict=True):
            h = torch.relu(layer(torch.cat([h, skip.expand(*h.shape[:-1], -1)], -1)))
        out = self.gen_out(torch.cat([h, skips[0].expand(*h.shape[:-1], -1)], -1))
        if self.likelihood == "bernoulli":
            return dist.Bernoulli(logits=out, validate_args=False)
        scale = self.min_scale + nn.functional.softplus(self.log_scale)
        return dist.Normal(out, scale, validate_args=False)

    # ------------------------------------------------------------------ Pyro pair
    def model(self, x, mask=None, b=None):
        b, _, _ = self._inputs(x, mask, b)
        scored = b if mask is None else b & mask
        with pyro.plate("data", x.shape[0]):
            pz, skips = self.prior(x, mask, b)
            if self.training:  # the paper's regulariser, a training term only
                loc, scale = pz.base_dist.loc, pz.base_dist.scale
                reg = -(loc**2).sum(-1) / (2 * SIGMA_MU**2) + SIGMA_SIGMA * (
                    scale.log() - scale
                ).sum(-1)
                pyro.factor("prior_regulariser", reg)
            z = pyro.sample("z", pz)
            px = self.decode(z, skips).mask(scored)
            pyro.sample("x", px.to_event(1), obs=clean_missing(x, scored))
        return z

    def guide(self, x, mask=None, b=None):
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", self.proposal_distribution(x, mask, b))

    # ------------------------------------------------------------------ masks
    @staticmethod
    def no_mask(x: torch.Tensor) -> torch.Tensor:
        """An all-False mask ``b`` shaped like ``x``: the context placeholder that
        :meth:`masks` redraws for every minibatch."""
        return torch.zeros_like(x, dtype=torch.bool)

    def masks(self, p: float = 0.5, kind: str = "mcar", image_shape=None, patterns=None):
        """Random masks ``b`` for training, as ``fit(..., context_noise=...)``: each entry
        hidden with probability ``p`` (``kind="mcar"``), one random quarter of each image
        (``kind="quarters"``, with ``image_shape``), or one of the given ``patterns`` per row,
        uniformly (``kind="patterns"``: a bool ``(P, D)`` tensor, True = hidden — the masks
        the model will be asked to fill). Records what it trains on, so
        :func:`~pgm3d.inference.complete` can warn about masks of another kind."""
        from pgm3d.data.masks import quarter_mask, random_mask

        if kind not in ("mcar", "quarters", "patterns"):
            raise ValueError(f"kind must be 'mcar', 'quarters' or 'patterns', got {kind!r}")
        if kind == "quarters" and image_shape is None:
            raise ValueError("kind='quarters' needs the image_shape")
        if kind == "patterns":
            patterns = self._check_patterns(patterns)
            self.trained_masks = ("patterns", float(patterns.double().mean()))
        else:
            self.trained_masks = (kind, float(p) if kind == "mcar" else 0.25)

        def draw(ctx: dict, generator: torch.Generator) -> dict:
            b = ctx["b"]
            if kind == "mcar":
                hidden = ~random_mask(b.shape, p, generator=generator, device=b.device)
            elif kind == "quarters":
                hidden = ~quarter_mask(b.shape, image_shape, generator=generator, device=b.device)
            else:
                pick = torch.randint(len(patterns), (b.shape[0],), generator=generator)
                hidden = patterns[pick].to(b.device)
            return {**ctx, "b": hidden}

        return draw

    def _check_patterns(self, patterns) -> torch.Tensor:
        if not isinstance(patterns, torch.Tensor) or patterns.dtype != torch.bool:
            raise TypeError("kind='patterns' needs patterns: a bool (P, D) tensor, True = hidden")
        if patterns.dim() != 2 or patterns.shape[1] != self.data_dim or len(patterns) == 0:
            raise ValueError(
                f"patterns must be (P, {self.data_dim}) with P >= 1, got {tuple(patterns.shape)}"
            )
        return patterns.cpu()

    def extra_state(self) -> dict:
        return {"trained_masks": list(self.trained_masks) if self.trained_masks else None}

    def load_extra_state(self, state: dict) -> None:
        masks = state.get("trained_masks")
        self.trained_masks = tuple(masks) if masks else None
