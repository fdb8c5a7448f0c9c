r"""The standard-VAE baseline of the multi-entity VAE (thesis ch. 5): one latent vector of the
same total size (60) and the same networks, without the object structure.

.. math::
    p(z) = \mathcal{N}(0, I_{60}), \qquad
    p(x \mid z) = \prod \operatorname{Bernoulli}\big(\sigma(h(g(z)))\big),

where :math:`g` and :math:`h` are :class:`~pgm3d.models.mvae.ObjectDecoder` (applied once) and
:class:`~pgm3d.models.mvae.Renderer`, and the guide's encoder is the MVAE's conv trunk with a
fully connected layer from the whole grid to :math:`q(z \mid x) = \mathcal{N}(\mu, \sigma^2)`.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn
from torch.nn import functional as F

from pgm3d._validation import check_inputs
from pgm3d.missing import clean_missing
from pgm3d.models.base import Model, check_n
from pgm3d.models.mvae import ObjectDecoder, Renderer, SpriteEncoder

__all__ = ["SceneVAE"]


class SceneVAE(Model, PyroModule):
    """A VAE over flattened RGB images with the MVAE's networks.

    :param int latent_dim: size of ``z`` (60 = the MVAE's 5 objects × 12).
    :param int image_size: ``S`` (64; a multiple of 8).
    :param int width: channels of the encoder's conv layers (32).
    :param int channels: channels of the decoder and renderer (32).
    """

    data_kind = "scenes"

    def __init__(self, latent_dim: int = 60, *, image_size: int = 64, width=32, channels=32):
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if image_size < 8 or image_size % 8:
            raise ValueError(f"image_size must be a positive multiple of 8, got {image_size}")
        self.latent_dim, self.image_size, self.data_dim = latent_dim, image_size, 3 * image_size**2
        grid = 2 * latent_dim
        self.encoder = SpriteEncoder(grid, width)
        self.encoder_fc = nn.Linear(grid * (image_size // 8) ** 2, 2 * latent_dim)
        self.decoder = ObjectDecoder(latent_dim, image_size, channels)
        self.renderer = Renderer(channels)

    @property
    def row_shape(self) -> tuple[int, ...]:
        """A row is a flattened RGB image of this shape."""
        return (3, self.image_size, self.image_size)

    @classmethod
    def from_data(cls, data, *, latent_dim=None, **_) -> SceneVAE:
        """As many latent dimensions as the MVAE for the same scenes (12 per object slot)."""
        from pgm3d.models.mvae import MVAE

        return cls(latent_dim or 12 * MVAE.objects_for(data.exists.shape[-1]))

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """``loc, scale (B, Z)`` of :math:`q(z \\mid x)` (missing pixels read as 0)."""
        S = self.image_size
        h = self.encoder(clean_missing(x, mask).reshape(-1, 3, S, S))
        loc, log_scale = self.encoder_fc(F.elu(h.flatten(1))).chunk(2, -1)
        return loc, F.softplus(log_scale) + 1e-4

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits ``(..., 3 S²)`` of ``z (..., Z)``."""
        batch = z.shape[:-1]
        return self.renderer(self.decoder(z.reshape(-1, self.latent_dim))).reshape(
            *batch, self.data_dim
        )

    def decode(self, z: torch.Tensor) -> dist.Independent:
        """:math:`p(x \\mid z)`; event shape ``(3 S²,)``."""
        return dist.Bernoulli(logits=self.decode_logits(z), validate_args=False).to_event(1)

    def model(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self, x, mask)
        zero = x.new_zeros(self.latent_dim)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            px = dist.Bernoulli(logits=self.decode_logits(z), validate_args=False)
            if mask is not None:
                px = px.mask(mask)
            pyro.sample("x", px.to_event(1), obs=clean_missing(x, mask))
        return z

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        loc, scale = self.encode(x, mask)
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel probabilities ``(B, 3 S²)`` decoded from the posterior mean."""
        return torch.sigmoid(self.decode_logits(self.encode(x, mask)[0]))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        mean: bool = False,
        return_latents: bool = False,
    ):
        """``n`` scenes ``(n, 3 S²)`` from the prior: Bernoulli pixels, or their probabilities
        with ``mean=True`` (and ``z`` with ``return_latents``)."""
        check_n(n)
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype, device=p.device)
        x = torch.sigmoid(self.decode_logits(z))
        if not mean:
            x = torch.bernoulli(x, generator=generator)
        return (x, z) if return_latents else x
