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

For single-image reconstruction the encoder reads an image instead (``encoder="image"``,
:class:`ImageEncoder`: the paper's 2D convolutions of kernels 11, 5, 5 and strides 4, 2, 2,
then one covering the remaining map, channels 64-128-256-512 scaled by ``width``), the
reconstruction term compares :math:`G(E(\text{image}))` with the shape's grid, and the image
is the pair's conditioning input ``image`` (``fit_gan(..., images=)``). The paper's images are
256 × 256 RGB; pgm3d's rendered views are grey and 32–64 px, so the first layer keeps the
paper's kernel and stride and the last covers what remains.

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
from pgm3d.models.base import Model, check_n, data_kind

__all__ = ["GAN3D", "ImageEncoder"]

_CHANNELS = {64: [512, 256, 128, 64], 32: [512, 256, 128]}
#: probabilities are kept this far from 0 and 1 so the Bernoulli likelihood stays finite
_EPS = 1e-6
#: the 3D-VAE-GAN's encoders by the name ``pgm3d fit --encoder`` gives: GAN3D's ``encoder``
ENCODERS = {"none": False, "voxels": True, "image": "image"}


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


class ImageEncoder(nn.Module):
    """Images ``(B, S, S)`` -> ``(B, out_dim)``: Wu et al.'s image encoder (kernels 11, 5, 5
    and strides 4, 2, 2 with batch norm and ReLU, then a convolution over the remaining
    ``S / 16`` map), channels 64-128-256-512 times ``width``."""

    def __init__(self, image_size: int, out_dim: int, width: float = 1.0):
        super().__init__()
        if image_size < 16 or image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {image_size}")
        c = [max(1, round(k * width)) for k in (64, 128, 256)]
        self.net = nn.Sequential(
            nn.Conv2d(1, c[0], 11, stride=4, padding=5), nn.BatchNorm2d(c[0]), nn.ReLU(),
            nn.Conv2d(c[0], c[1], 5, stride=2, padding=2), nn.BatchNorm2d(c[1]), nn.ReLU(),
            nn.Conv2d(c[1], c[2], 5, stride=2, padding=2), nn.BatchNorm2d(c[2]), nn.ReLU(),
            nn.Conv2d(c[2], out_dim, image_size // 16),
        )  # fmt: skip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.unsqueeze(1)).flatten(1)


class GAN3D(Model, PyroModule):
    """3D-GAN, or with ``encoder=True`` the 3D-VAE-GAN, over flattened voxel grids.

    :param int resolution: ``R``, 64 (the paper's) or 32.
    :param int latent_dim: size of ``z`` (200).
    :param encoder: add the VAE-GAN encoder ``q(z | x)`` (True), or one that reads an image of
        the shape, ``q(z | image)`` (``"image"``; the image is the context ``image``).
    :param int image_size: the images' size, for ``encoder="image"``.
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
        encoder: bool | str = False,
        width: float = 1.0,
        image_size: int = 64,
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
        if encoder not in (False, True, "image"):
            raise ValueError(f"encoder must be False, True or 'image', got {encoder!r}")
        self.image_encoder = encoder == "image"
        if self.image_encoder:
            self.encoder = ImageEncoder(image_size, 2 * latent_dim, width)
            self.pgm3d_contract = {"obs": "x", "plate": "data", "data_arg": "x",
                                   "context": ("image",)}  # fmt: skip
        else:
            self.encoder = Discriminator3D(resolution, 2 * latent_dim, width) if encoder else None

    @property
    def row_shape(self) -> tuple[int, ...]:
        """A row is a flattened occupancy grid of this shape."""
        return (1, self.resolution, self.resolution, self.resolution)

    @classmethod
    def accepts(cls, kind: str) -> bool:
        """Voxel sets, or a voxel set's rendered views (a ViewSet: the 3D-VAE-GAN from images)."""
        return kind in ("voxels", "views")

    @classmethod
    def from_data(cls, data, *, latent_dim=None, hidden=None, encoder=None, **_) -> GAN3D:
        """The paper's network at a VoxelSet's resolution (``z`` of ``latent_dim``, 200); on a
        :class:`~pgm3d.data.views.ViewSet`, the 3D-VAE-GAN with the image encoder at its
        images' size (``encoder``: ``None`` for the data's default, ``"none"``, ``"voxels"``
        or ``"image"``)."""
        if hidden is not None:
            raise ValueError("the GAN's widths are the paper's; hidden does not apply")
        views = data_kind(data) == "views"
        encoder = encoder or ("image" if views else "none")
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {tuple(ENCODERS)}, got {encoder!r}")
        if encoder == "image" and not views:
            raise ValueError(
                "encoder 'image' reads rendered views of the shapes: give a voxel set's views "
                "as data (e.g. primitives-views), not the grids alone"
            )
        size = data.images.shape[-1] if views else 64
        return cls(data.resolution, latent_dim or 200, encoder=ENCODERS[encoder], image_size=size)

    def grid(self, x: torch.Tensor) -> torch.Tensor:
        """Rows ``(B, R³)`` as ``(B, 1, R, R, R)``."""
        R = self.resolution
        return x.reshape(-1, 1, R, R, R)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Occupancy probabilities ``(..., R³)`` of ``z (..., Z)``."""
        probs = self.generator(z.reshape(-1, self.latent_dim))
        return probs.reshape(*z.shape[:-1], self.data_dim)

    def encode(self, x: torch.Tensor | None, mask: torch.Tensor | None = None, image=None):
        """Location and scale of the VAE-GAN's ``q(z | x)`` (missing voxels read as empty), or
        of ``q(z | image)`` with an image encoder."""
        if self.encoder is None:
            raise ValueError("this GAN3D has no encoder; build it with encoder=True (3D-VAE-GAN)")
        if self.image_encoder:
            if image is None:
                raise ValueError(
                    "this GAN3D encodes images: pass image=... (or context={'image': images})"
                )
            h = self.encoder(torch.as_tensor(image).to(self.generator.net[0].weight))
        else:
            h = self.encoder(self.grid(clean_missing(x, mask)))
        loc, log_var = h.chunk(2, -1)
        return loc, (0.5 * log_var.clamp(-20.0, 10.0)).exp()

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Occupancy probabilities ``(B, R, R, R)`` of the shapes in ``images (B, S, S)``:
        :math:`G(\\mu_E(\\text{image}))` (an image encoder's posterior mean)."""
        if not self.image_encoder:
            raise ValueError("reconstruct reads images: build the GAN3D with encoder='image'")
        R, out = self.resolution, []
        for rows in images.split(batch_size):
            loc, _ = self.encode(None, image=rows)
            out.append(self.decode(loc).reshape(-1, R, R, R))
        return torch.cat(out)

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
    def model(self, x: torch.Tensor, mask: torch.Tensor | None = None, image=None) -> torch.Tensor:
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

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None, image=None):
        with pyro.plate("data", x.shape[0]):
            if self.encoder is None:  # the prior as an independence proposal
                zero = x.new_zeros(self.latent_dim)
                return pyro.sample("z", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            loc, scale = self.encode(x, mask, image)
            return pyro.sample("z", dist.Normal(loc, scale).to_event(1))
