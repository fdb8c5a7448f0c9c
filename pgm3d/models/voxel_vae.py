r"""A plain convolutional VAE of voxel grids: the non-sequential baseline of Rezende et al.
2016's volume experiments (one latent, drawn once, decoded by 3D transposed convolutions).

.. math::
    z \sim \mathcal{N}(0, I), \qquad
    x \sim \prod_v \mathrm{Bernoulli}\big(\sigma(g_\theta(z))_v\big), \qquad
    q(z \mid x) = \mathcal{N}\big(\mu_\phi(x), \operatorname{diag}\sigma_\phi(x)^2\big),

with :math:`\mu_\phi, \sigma_\phi` two strided 3D convolutions (kernel 4, stride 2: ``R`` to
``R/4``) and a linear layer, and :math:`g_\theta` their mirror image. Rows are flattened grids
``(B, R³)`` of 0/1; a missing voxel reads as empty and is left out of the likelihood.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.nn import PyroModule
from torch import nn

from pgm3d._validation import check_inputs
from pgm3d.missing import clean_missing
from pgm3d.models.base import Model, check_n, grid_rows

__all__ = ["VoxelVAE"]


class VoxelVAE(Model, PyroModule):
    """A convolutional VAE of ``resolution³`` grids (``resolution`` a multiple of 4).

    :param int resolution: ``R``.
    :param int latent_dim: size of ``z``.
    :param tuple channels: channels of the two convolutions (and, reversed, of the decoder).
    """

    data_kind = "voxels"

    def __init__(self, resolution: int = 32, latent_dim: int = 64, channels=(32, 64)):
        super().__init__()
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution % 4:
            raise ValueError(f"resolution must be a positive multiple of 4, got {resolution!r}")
        if resolution < 4 or latent_dim < 1 or len(channels) != 2 or min(channels) < 1:
            raise ValueError("latent_dim must be >= 1 and channels two positive ints")
        self.resolution, self.data_dim, self.latent_dim = resolution, resolution**3, latent_dim
        a, b = channels
        self.channels, self._inner = (a, b), resolution // 4
        flat = b * self._inner**3
        self.encoder = nn.Sequential(
            nn.Conv3d(1, a, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv3d(a, b, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
            nn.Linear(flat, 2 * latent_dim),
        )  # fmt: skip
        self.decoder_fc = nn.Sequential(nn.Linear(latent_dim, flat), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose3d(b, a, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose3d(a, 1, 4, stride=2, padding=1),
        )  # fmt: skip

    #: flatten ``(N, R, R, R)`` grids to ``(N, R³)`` rows of 0/1
    rows = staticmethod(grid_rows)

    @property
    def row_shape(self) -> tuple[int, ...]:
        """A row is a flattened occupancy grid of this shape."""
        return (1, self.resolution, self.resolution, self.resolution)

    @classmethod
    def from_data(cls, data, *, latent_dim=None, **_) -> VoxelVAE:
        """Sized for a VoxelSet's resolution, ``z`` of ``latent_dim`` (64)."""
        return cls(data.resolution, latent_dim or 64)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Voxel logits ``(..., R³)`` of latents ``(..., latent_dim)``."""
        lead, b, n = z.shape[:-1], self.channels[1], self._inner
        h = self.decoder_fc(z.reshape(-1, self.latent_dim)).reshape(-1, b, n, n, n)
        return self.decoder(h).reshape(*lead, self.data_dim)

    def model(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        check_inputs(self, x, mask)
        zero = x.new_zeros(self.latent_dim)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            px = dist.Bernoulli(logits=self.logits(z), validate_args=False)
            if mask is not None:
                px = px.mask(mask)
            pyro.sample("x", px.to_event(1), obs=clean_missing(x, mask))

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        R = self.resolution
        loc, raw = self.encoder(clean_missing(x, mask).reshape(-1, 1, R, R, R)).chunk(2, -1)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(loc, F.softplus(raw) + 1e-4).to_event(1))

    @torch.no_grad()
    def sample(self, n: int, *, generator=None, mean: bool = False, return_latents: bool = False):
        """``n`` grids ``(n, R, R, R)`` from the prior: Bernoulli draws, or occupancy
        probabilities with ``mean=True``; with ``return_latents`` also ``z (n, latent_dim)``."""
        check_n(n)
        ref = self.decoder[-1].weight
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=ref.dtype,
                        device=ref.device)  # fmt: skip
        probs = torch.sigmoid(self.logits(z))
        if not mean:
            probs = torch.bernoulli(probs, generator=generator)
        R = self.resolution
        grids = probs.reshape(n, R, R, R)
        return (grids, z) if return_latents else grids
