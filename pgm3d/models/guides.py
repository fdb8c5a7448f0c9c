r"""Amortised Gaussian guides that any model following the contract can be trained with.

:class:`GaussianEncoderGuide` maps the zero-filled data and its mask through an MLP (or a
single affine layer) to a Gaussian over the latent site ``"z"``:

.. math::
    q(z \mid x_v) = \mathcal{N}\big(f_\mu([x \odot m, m]),\ \Sigma(\cdot)\big),

with a diagonal covariance predicted per row, or a full covariance shared by all rows (the
form of the exact posterior of fully observed factor analysis, which a linear encoder with a
full covariance can therefore represent exactly).
"""

from __future__ import annotations

import itertools

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pgm3d.missing import clean_missing

__all__ = ["GaussianEncoderGuide", "mlp"]


def mlp(sizes: list[int], activation=nn.ReLU) -> nn.Sequential:
    """Fully connected layers ``sizes[0] -> ... -> sizes[-1]``, activation between layers."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class GaussianEncoderGuide(nn.Module):
    """An amortised Gaussian guide ``guide(x, mask)`` for the latent site ``"z"``.

    A plain :class:`torch.nn.Module` (its parameters never enter Pyro's global param store),
    called as ``guide(x, mask)`` wherever a guide is expected.

    :param int data_dim: ``D``.
    :param int latent_dim: ``K``.
    :param hidden: hidden layer sizes of the encoder (``()`` = affine).
    :param str covariance: ``"diagonal"`` (per-row scales from the encoder) or ``"full"`` (one
        learned lower-triangular scale shared by all rows).
    :param float init_scale: initial posterior standard deviation.
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        hidden: tuple[int, ...] = (),
        covariance: str = "diagonal",
        init_scale: float = 0.1,
    ):
        super().__init__()
        if covariance not in ("diagonal", "full"):
            raise ValueError(f"covariance must be 'diagonal' or 'full', got {covariance!r}")
        self.data_dim, self.latent_dim, self.covariance = data_dim, latent_dim, covariance
        out = 2 * latent_dim if covariance == "diagonal" else latent_dim
        self.net = mlp([2 * data_dim, *hidden, out])
        self._log_init = float(torch.log(torch.tensor(init_scale)))
        if covariance == "full":
            self.scale_offdiag = nn.Parameter(torch.zeros(latent_dim, latent_dim))
            self.log_scale_diag = nn.Parameter(torch.full((latent_dim,), self._log_init))

    def distribution(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """:math:`q(z \\mid x_v)` with batch shape ``(B,)`` and event shape ``(K,)``."""
        m = torch.ones_like(x) if mask is None else mask.to(x.dtype)
        h = self.net(torch.cat([clean_missing(x, mask), m], -1))
        K = self.latent_dim
        if self.covariance == "diagonal":
            scale = torch.exp(h[..., K:] + self._log_init)
            return dist.Normal(h[..., :K], scale).to_event(1)
        tril = self.scale_offdiag.tril(-1) + torch.diag_embed(self.log_scale_diag.exp())
        return dist.MultivariateNormal(h, scale_tril=tril)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", self.distribution(x, mask))
