r"""A small variational autoencoder (Kingma & Welling 2014; Rezende et al. 2014).

.. math::
    p(z) = \mathcal{N}(0, I_K), \qquad
    p(x \mid z) = \mathcal{N}\big(f_\theta(z), \operatorname{diag}(\sigma^2)\big)
    \ \text{or}\ \operatorname{Bernoulli}\big(\operatorname{sigmoid} f_\theta(z)\big),

with an MLP decoder :math:`f_\theta` and an amortised Gaussian guide
(:class:`~pgm3d.models.guides.GaussianEncoderGuide`) that reads the zero-filled data and its
mask. The nonlinear model on which the inference back ends are checked where no closed form
exists.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from pgm3d._validation import check_inputs
from pgm3d.missing import clean_missing
from pgm3d.models.base import Model, check_n, draw_observations, flat_rows
from pgm3d.models.guides import GaussianEncoderGuide, mlp

__all__ = ["VAE"]


class VAE(Model, PyroModule):
    """Model/guide pair with an MLP decoder.

    :param int data_dim: ``D``.
    :param int latent_dim: ``K``.
    :param hidden: hidden layer sizes of the decoder (the encoder mirrors them).
    :param str likelihood: ``"gaussian"`` (learned per-dimension scale, floored at
        ``min_scale``) or ``"bernoulli"`` (binary data).
    :param float min_scale: lower bound of the Gaussian scale.
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        hidden: tuple[int, ...] = (128,),
        likelihood: str = "gaussian",
        min_scale: float = 1e-3,
    ):
        super().__init__()
        if likelihood not in ("gaussian", "bernoulli"):
            raise ValueError(f"likelihood must be 'gaussian' or 'bernoulli', got {likelihood!r}")
        if not 1 <= latent_dim:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        self.data_dim, self.latent_dim, self.likelihood = data_dim, latent_dim, likelihood
        self.min_scale = min_scale
        self.decoder = mlp([latent_dim, *hidden, data_dim], activation=nn.Tanh)
        self.log_scale = nn.Parameter(torch.zeros(data_dim))
        self.encoder = GaussianEncoderGuide(data_dim, latent_dim, hidden=tuple(reversed(hidden)))

    @classmethod
    def from_data(cls, data, *, latent_dim=None, hidden=None, likelihood="gaussian", **_):
        """Sized for the data's columns: ``latent_dim`` 8, one hidden layer of ``hidden``
        (128) units."""
        x, _ = flat_rows(data)
        return cls(x.shape[-1], latent_dim or 8, hidden=(hidden or 128,), likelihood=likelihood)

    def decode(self, z: torch.Tensor) -> dist.Independent:
        """:math:`p(x \\mid z)` for ``z`` of shape ``(..., K)``; event shape ``(D,)``."""
        out = self.decoder(z)
        if self.likelihood == "bernoulli":
            return dist.Bernoulli(logits=out, validate_args=False).to_event(1)
        scale = self.min_scale + nn.functional.softplus(self.log_scale)
        return dist.Normal(out, scale, validate_args=False).to_event(1)

    def model(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self, x, mask)
        K = self.latent_dim
        zero = x.new_zeros(K)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            px = self.decode(z).base_dist
            if mask is not None:
                px = px.mask(mask)
            pyro.sample("x", px.to_event(1), obs=clean_missing(x, mask))
        return z

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(x, mask)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        mean: bool = False,
        return_latents: bool = False,
    ):
        """Draw ``n`` samples ``x`` of shape ``(n, D)`` (and ``z`` of shape ``(n, K)``); with
        ``mean=True`` the decoder means at the drawn ``z``."""
        check_n(n)
        p = next(self.parameters())
        with torch.no_grad():
            z = torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype, device=p.device)
            x = draw_observations(self.decode(z).base_dist, mean=mean, generator=generator)
        return (x, z) if return_latents else x
