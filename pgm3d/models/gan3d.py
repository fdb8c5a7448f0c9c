r"""3D-GAN and 3D-VAE-GAN (Wu, Zhang, Xue, Freeman & Tenenbaum 2016, "Learning a probabilistic
latent space of object shapes via 3D generative-adversarial modeling").

Generator :math:`G`: a 200-d :math:`z \sim \mathcal{N}(0, I)` (the paper samples a uniform
:math:`z`; pgm3d uses the Gaussian so the same latent serves the Pyro model and the VAE-GAN's
KL) through volumetric full convolutions of kernel 4 and stride 2 (the first of stride 1, from
1³ to 4³), channels 512-256-128-64-1 with batch norm and ReLU, and a sigmoid, to 64³ occupancy
probabilities; at 32³ the 64-channel layer is left out. The discriminator :math:`D` mirrors it
with leaky ReLU (slope 0.2) and ends in a sigmoid. The 3D-VAE-GAN adds an encoder :math:`E`
(D's convolutions, then the mean and log-variance of :math:`q(z \mid x)`) and the loss

.. math::
    L = L_\text{GAN} + \alpha_1 \operatorname{KL}\big(q(z \mid x) \,\|\, p(z)\big)
      + \alpha_2 \lVert G(E(x)) - x \rVert_2^2, \qquad \alpha_1 = 5,\ \alpha_2 = 10^{-4}.

Training (:func:`pgm3d.inference.fit_gan`) follows the paper: Adam with :math:`\beta_1 = 0.5`,
learning rates 0.0025 (G) and :math:`10^{-5}` (D), and D is updated only while its accuracy on
the last batch is below 80%.

As a Pyro model, the generator is :math:`p(z)\,p(x \mid z)` with
:math:`p(x_v \mid z) = \operatorname{Bernoulli}(G(z)_v)` over flattened grids, so sampling,
interpolation and the completion back ends (``"mwg"``, ``"importance"``, ``"nuts"``) apply. Its
guide is the VAE-GAN's encoder, or for the plain GAN the prior itself (an independence
proposal: correct, if slow to mix). Shape features for classification (:meth:`GAN3D.features`)
are D's activations of its last three hidden layers (conv layers 2–4 at 64³), each max-pooled to
2³ and concatenated, as in the paper.
"""

from __future__ import annotations

import itertools

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from pgm3d._validation import check_inputs
from pgm3d.missing import clean_missing
from pgm3d.models.base import Model, check_n

__all__ = ["GAN3D"]

_CHANNELS = {64: [512, 256, 128, 64], 32: [512, 256, 128]}
#: probabilities are kept this far from 0 and 1 so the Bernoulli likelihood stays finite
_EPS = 1e-6


def _channels(resolution: int, width: float) -> list[int]:
    return [max(1, round(c * width)) for c in _CHANNELS[resolution]]


class Generator3D(nn.Module):
    """``z (B, Z)`` -> occupancy probabilities ``(B, 1, R, R, R)``."""

    def __init__(self, latent_dim: int, resolution: int, width: float = 1.0):
        super().__init__()
        ch = _channels(resolution, width)
        layers: list[nn.Module] = [
            nn.ConvTranspose3d(latent_dim, ch[0], 4, stride=1),
            nn.BatchNorm3d(ch[0]),
            nn.ReLU(),
        ]
        for a, b in itertools.pairwise(ch):
            layers += [
                nn.ConvTranspose3d(a, b, 4, stride=2, padding=1),
                nn.BatchNorm3d(b),
                nn.ReLU(),
            ]
        layers += [nn.ConvTranspose3d(ch[-1], 1, 4, stride=2, padding=1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(*z.shape, 1, 1, 1))


class Discriminator3D(nn.Module):
    """Grids ``(B, 1, R, R, R)`` -> the probability of being real ``(B,)``, mirroring
    :class:`Generator3D`; ``hidden(x)`` returns every hidden layer's activations."""

    def __init__(self, resolution: int, out_dim: int = 1, width: float = 1.0):
        super().__init__()
        ch = list(reversed(_channels(resolution, width)))
        blocks = [nn.Sequential(nn.Conv3d(1, ch[0], 4, stride=2, padding=1), nn.LeakyReLU(0.2))]
        for a, b in itertools.pairwise(ch):
            blocks.append(
                nn.Sequential(
                    nn.Conv3d(a, b, 4, stride=2, padding=1), nn.BatchNorm3d(b), nn.LeakyReLU(0.2)
                )
            )
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Conv3d(ch[-1], out_dim, 4, stride=1)  # 4^3 -> 1

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x)[-1]).flatten(1)


class GAN3D(Model, PyroModule):
    """3D-GAN, or with ``encoder=True`` the 3D-VAE-GAN, over flattened voxel grids.

    :param int resolution: ``R``, 64 (the paper's) or 32.
    :param int latent_dim: size of ``z`` (200).
    :param bool encoder: add the VAE-GAN encoder ``q(z | x)``.
    :param float width: multiplies every channel count (1: the paper's 512-256-128-64; 0.25
        makes a step about 16 times cheaper, for CPUs).
    """

    data_kind = "voxels"
    trained_by = "adversarial"

    def __init__(
        self,
        resolution: int = 64,
        latent_dim: int = 200,
        *,
        encoder: bool = False,
        width: float = 1.0,
    ):
        super().__init__()
        if resolution not in _CHANNELS:
            raise ValueError(f"resolution must be 64 or 32, got {resolution}")
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}")
        self.resolution, self.latent_dim, self.data_dim = resolution, latent_dim, resolution**3
        self.width = width
        self.generator = Generator3D(latent_dim, resolution, width)
        self.discriminator = Discriminator3D(resolution, width=width)
        self.encoder = Discriminator3D(resolution, 2 * latent_dim, width) if encoder else None

    @property
    def row_shape(self) -> tuple[int, ...]:
        """A row is a flattened occupancy grid of this shape."""
        return (1, self.resolution, self.resolution, self.resolution)

    @classmethod
    def from_data(cls, data, *, latent_dim=None, hidden=None, **_) -> GAN3D:
        """The paper's network at a VoxelSet's resolution (``z`` of ``latent_dim``, 200)."""
        if hidden is not None:
            raise ValueError("the GAN's widths are the paper's; hidden does not apply")
        return cls(data.resolution, latent_dim or 200)

    def grid(self, x: torch.Tensor) -> torch.Tensor:
        """Rows ``(B, R³)`` as ``(B, 1, R, R, R)``."""
        R = self.resolution
        return x.reshape(-1, 1, R, R, R)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Occupancy probabilities ``(..., R³)`` of ``z (..., Z)``."""
        probs = self.generator(z.reshape(-1, self.latent_dim))
        return probs.reshape(*z.shape[:-1], self.data_dim)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """Location and scale of the VAE-GAN's ``q(z | x)`` (missing voxels read as empty)."""
        if self.encoder is None:
            raise ValueError("this GAN3D has no encoder; build it with encoder=True (3D-VAE-GAN)")
        loc, log_var = self.encoder(self.grid(clean_missing(x, mask))).chunk(2, -1)
        return loc, (0.5 * log_var.clamp(-20.0, 10.0)).exp()

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """The discriminator's last three hidden layers, each max-pooled to 2³, concatenated:
        ``(B, F)`` shape features (Wu et al.: conv layers 2-4)."""
        out = []
        for rows in x.split(batch_size):
            hidden = self.discriminator.hidden(self.grid(rows))[-3:]
            pooled = [nn.functional.adaptive_max_pool3d(h, 2).flatten(1) for h in hidden]
            out.append(torch.cat(pooled, -1))
        return torch.cat(out)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        mean: bool = False,
        return_latents: bool = False,
    ):
        """``n`` grids ``(n, R, R, R)`` from ``z ~ p(z)``: Bernoulli draws, or the occupancy
        probabilities ``G(z)`` with ``mean=True`` (and ``z`` with ``return_latents``)."""
        check_n(n)
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype, device=p.device)
        probs = self.decode(z)
        if not mean:
            probs = torch.bernoulli(probs, generator=generator)
        R = self.resolution
        grids = probs.reshape(n, R, R, R)
        return (grids, z) if return_latents else grids

    # -- Pyro ----------------------------------------------------------------------------------
    def model(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self, x, mask)
        zero = x.new_zeros(self.latent_dim)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            probs = self.decode(z).clamp(_EPS, 1 - _EPS)
            px = dist.Bernoulli(probs=probs, validate_args=False)
            if mask is not None:
                px = px.mask(mask)
            pyro.sample("x", px.to_event(1), obs=clean_missing(x, mask))
        return z

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate("data", x.shape[0]):
            if self.encoder is None:  # the prior as an independence proposal
                zero = x.new_zeros(self.latent_dim)
                return pyro.sample("z", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            loc, scale = self.encode(x, mask)
            return pyro.sample("z", dist.Normal(loc, scale).to_event(1))
