r"""The multi-entity VAE (Nash, Eslami, Burgess, Higgins, Zoran, Weber & Battaglia 2017, "The
multi-entity variational autoencoder"; thesis ch. 5).

The latent of a scene is a *set* of :math:`K` object vectors :math:`z_{1:K}`, each
:math:`\mathcal{N}(0, I_{12})` a priori. A shared object decoder :math:`g` maps each to a
feature map, a permutation-invariant pooling (element-wise max or sum) merges them, and a
renderer :math:`h` turns the pooled map into Bernoulli logits over the image:

.. math::
    p(x \mid z_{1:K}) = \prod_{c,i,j} \operatorname{Bernoulli}\Big(x_{cij} \,\Big|\,
    \sigma\big(h(\operatorname{pool}_k g(z_k))\big)_{cij}\Big).

The encoder is convolutional: four conv layers with max-pooling, then two channels of relative
``x, y`` coordinates, then two more conv layers, give a grid of :math:`C` candidate posteriors
:math:`q_c = \mathcal{N}(\mu_c, \sigma_c^2)`. *Maximal-information attention* keeps the
:math:`K` candidates of largest :math:`\operatorname{KL}(q_c \,\|\, p(z))` as the posteriors of
the :math:`K` objects, ordered by that KL. Uninformative candidates have a KL near zero, so the
KLs of the kept objects also count the objects in a scene.

As a Pyro model the objects are a plate: ``z`` has shape ``(K, B, 12)`` (the ``"objects"`` plate
at dim -2 inside ``"data"`` at dim -1), so every objective and importance-weighted bound of
:mod:`pgm3d.inference` sees :math:`K` latents per scene. Activations are ELU throughout.
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

__all__ = ["MVAE", "ObjectDecoder", "Renderer", "SpriteEncoder", "gaussian_kl"]


def gaussian_kl(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """:math:`\\operatorname{KL}(\\mathcal{N}(\\mu, \\sigma^2) \\| \\mathcal{N}(0, I))` summed over
    the last dimension."""
    return 0.5 * (loc.square() + scale.square() - 1 - 2 * scale.log()).sum(-1)


def _coordinates(h: torch.Tensor) -> torch.Tensor:
    """Two channels of ``x, y`` in ``[-1, 1]`` over the spatial grid of ``h (B, C, H, W)``."""
    B, _, H, W = h.shape
    ys = torch.linspace(-1, 1, H, dtype=h.dtype, device=h.device)
    xs = torch.linspace(-1, 1, W, dtype=h.dtype, device=h.device)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))  # (2, H, W)
    return grid.expand(B, 2, H, W)


class SpriteEncoder(nn.Module):
    """Images ``(B, 3, S, S)`` -> a ``(B, out, S/8, S/8)`` grid: four 3×3 conv layers (the
    first three each followed by 2×2 max-pooling), relative coordinate channels, a 3×3 and a
    1×1 conv layer.

    :param int out_channels: channels of the output grid (``2 × 12`` candidate parameters).
    :param int width: channels of the conv layers (32, 32, 64, 64 at ``width=32``).
    """

    def __init__(self, out_channels: int, width: int = 32, in_channels: int = 3):
        super().__init__()
        w = width
        self.trunk = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1),
            nn.ELU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, w, 3, padding=1),
            nn.ELU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ELU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.ELU(),
        )
        self.head = nn.Sequential(
            nn.Conv2d(2 * w + 2, 2 * w, 3, padding=1), nn.ELU(), nn.Conv2d(2 * w, out_channels, 1)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = self.trunk(images)
        return self.head(torch.cat([h, _coordinates(h)], 1))


class ObjectDecoder(nn.Module):
    """The shared object network :math:`g`: ``z (..., Z)`` -> feature maps
    ``(..., C, 4 s, 4 s)`` through two fully connected layers to ``16 × s × s`` (``s = S / 8``)
    and two 3×3 conv layers, each after a bilinear ×2 up-sampling."""

    def __init__(self, latent_dim: int, image_size: int = 64, channels: int = 32, hidden=256):
        super().__init__()
        self.side = image_size // 8
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ELU(), nn.Linear(hidden, 16 * self.side**2), nn.ELU()
        )
        self.conv1 = nn.Conv2d(16, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.out_side = 4 * self.side

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        batch = z.shape[:-1]
        h = self.fc(z.reshape(-1, z.shape[-1])).view(-1, 16, self.side, self.side)
        h = F.elu(self.conv1(F.interpolate(h, scale_factor=2, mode="bilinear")))
        h = F.elu(self.conv2(F.interpolate(h, scale_factor=2, mode="bilinear")))
        return h.view(*batch, *h.shape[1:])


class Renderer(nn.Module):
    """The renderer :math:`h`: pooled feature maps ``(B, C, S/2, S/2)`` -> Bernoulli logits
    ``(B, 3, S, S)``: two 3×3 conv layers, a bilinear ×2 up-sampling, a 3×3 conv layer to the
    colour channels (the full-resolution layer is the narrow one, which keeps it cheap)."""

    def __init__(self, channels: int = 32, out_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv3 = nn.Conv2d(channels, out_channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = F.elu(self.conv2(F.elu(self.conv1(h))))
        return self.conv3(F.interpolate(h, scale_factor=2, mode="bilinear"))


class MVAE(Model, PyroModule):
    """The multi-entity VAE as a Pyro model/guide pair over flattened RGB images.

    :param int num_objects: ``K``, object latents kept per scene (5: 60 latent dimensions in all,
        the size of the thesis's VAE baseline).
    :param int object_dim: size of each object latent (12).
    :param str pooling: ``"max"`` or ``"sum"`` over objects.
    :param int image_size: ``S`` of ``S × S`` RGB images (64; a multiple of 8).
    :param int width: channels of the encoder's conv layers (32).
    :param int channels: channels of the object decoder and the renderer (32).
    """

    data_kind = "scenes"
    completion_methods = ()  # the object latents lie in an "objects" plate (one vector per row)

    def __init__(
        self,
        num_objects: int = 5,
        object_dim: int = 12,
        *,
        pooling: str = "max",
        image_size: int = 64,
        width: int = 32,
        channels: int = 32,
    ):
        super().__init__()
        if pooling not in ("max", "sum"):
            raise ValueError(f"pooling must be 'max' or 'sum', got {pooling!r}")
        if min(num_objects, object_dim) < 1:
            raise ValueError("num_objects and object_dim must be >= 1")
        if image_size < 8 or image_size % 8:
            raise ValueError(f"image_size must be a positive multiple of 8, got {image_size}")
        self.num_objects, self.object_dim, self.pooling = num_objects, object_dim, pooling
        self.image_size, self.data_dim = image_size, 3 * image_size**2
        self.num_candidates = (image_size // 8) ** 2
        if num_objects > self.num_candidates:
            raise ValueError(f"num_objects must be <= {self.num_candidates} candidates")
        self.encoder = SpriteEncoder(2 * object_dim, width)
        self.object_decoder = ObjectDecoder(object_dim, image_size, channels)
        self.renderer = Renderer(channels)

    @property
    def row_shape(self) -> tuple[int, ...]:
        """A row is a flattened RGB image of this shape."""
        return (3, self.image_size, self.image_size)

    @classmethod
    def from_data(cls, data, *, latent_dim=None, **_) -> MVAE:
        """Object slots for the scenes' largest sprite count (:meth:`objects_for`), each a
        latent of ``latent_dim`` (12)."""
        return cls(cls.objects_for(data.exists.shape[-1]), latent_dim or 12)

    @staticmethod
    def objects_for(max_sprites: int) -> int:
        """Object slots for scenes of up to ``max_sprites`` sprites: the thesis's 5 up to 3
        sprites, two more than the sprites above (8 sprites: 10)."""
        return 5 if max_sprites <= 3 else max_sprites + 2

    @property
    def latent_dim(self) -> int:
        """All object latents together, ``K × object_dim``."""
        return self.num_objects * self.object_dim

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Rows ``(..., 3 S²)`` as images ``(..., 3, S, S)``."""
        S = self.image_size
        return x.reshape(*x.shape[:-1], 3, S, S)

    # -- inference network ---------------------------------------------------------------------
    def candidates(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """Every candidate posterior: ``loc, scale (B, C, Z)`` and ``kl (B, C)``, candidates in
        row-major grid order (missing pixels read as 0)."""
        h = self.encoder(self.images(clean_missing(x, mask)))
        h = h.flatten(2).transpose(1, 2)  # (B, C, 2Z)
        loc, log_scale = h.chunk(2, -1)
        scale = F.softplus(log_scale) + 1e-4
        return loc, scale, gaussian_kl(loc, scale)

    def select(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """Maximal-information attention: the ``K`` candidates of largest KL, in decreasing KL.

        :returns: ``loc, scale (B, K, Z)``, ``kl (B, K)`` and their grid ``index (B, K)``.
        """
        loc, scale, kl = self.candidates(x, mask)
        kl_top, index = kl.topk(self.num_objects, dim=-1)  # sorted, largest first
        pick = index[..., None].expand(-1, -1, self.object_dim)
        return loc.gather(1, pick), scale.gather(1, pick), kl_top, index

    # -- generative network --------------------------------------------------------------------
    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits ``(..., 3 S²)`` of object latents ``z (..., K, Z)`` (any ``K``,
        pooled, so the order of the objects does not matter)."""
        batch = z.shape[:-2]
        features = self.object_decoder(z.reshape(-1, *z.shape[-2:]))  # (N, K, C, s, s)
        pooled = features.amax(1) if self.pooling == "max" else features.sum(1)
        return self.renderer(pooled).reshape(*batch, self.data_dim)

    def decode(self, z: torch.Tensor) -> dist.Independent:
        """:math:`p(x \\mid z)` for ``z (..., K, Z)``; event shape ``(3 S²,)``."""
        return dist.Bernoulli(logits=self.decode_logits(z), validate_args=False).to_event(1)

    # -- Pyro ----------------------------------------------------------------------------------
    def model(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self, x, mask)
        zero = x.new_zeros(self.object_dim)
        with pyro.plate("data", x.shape[0], dim=-1):
            with pyro.plate("objects", self.num_objects, dim=-2):
                z = pyro.sample("z", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            # (..., K, B, Z) -> (..., B, K, Z) -> logits (..., B, D); x is outside the objects
            # plate, so its batch keeps a singleton at the objects' dim: (..., 1, B)
            logits = self.decode_logits(z.transpose(-3, -2)).unsqueeze(-3)
            px = dist.Bernoulli(logits=logits, validate_args=False)
            if mask is not None:
                px = px.mask(mask.unsqueeze(-3))
            # pixel intensities in [0, 1] are scored as Bernoulli targets, as in the thesis
            pyro.sample("x", px.to_event(1), obs=clean_missing(x, mask))
        return z

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        loc, scale, _, _ = self.select(x, mask)
        with pyro.plate("data", x.shape[0], dim=-1):
            with pyro.plate("objects", self.num_objects, dim=-2):
                q = dist.Normal(loc.transpose(0, 1), scale.transpose(0, 1)).to_event(1)
                return pyro.sample("z", q)

    # -- use -----------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict:
        """Posterior means of the objects ``(B, K, Z)``, their KLs ``(B, K)`` in decreasing order
        and grid positions, and the KL map of every candidate ``(B, S/8, S/8)``."""
        _, _, kl_all = self.candidates(x, mask)
        loc, scale, kl, index = self.select(x, mask)
        side = self.image_size // 8
        return {
            "loc": loc,
            "scale": scale,
            "kl": kl,
            "index": index,
            "kl_map": kl_all.view(-1, side, side),
        }

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel probabilities ``(B, 3 S²)`` decoded from the posterior means."""
        return torch.sigmoid(self.decode_logits(self.select(x, mask)[0]))

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
        with ``mean=True`` (and the object latents ``(n, K, Z)`` with ``return_latents``)."""
        check_n(n)
        p = next(self.parameters())
        shape = (n, self.num_objects, self.object_dim)
        z = torch.randn(shape, generator=generator, dtype=p.dtype, device=p.device)
        x = torch.sigmoid(self.decode_logits(z))
        if not mean:
            x = torch.bernoulli(x, generator=generator)
        return (x, z) if return_latents else x

    @torch.no_grad()
    def count(self, x: torch.Tensor, threshold: float) -> torch.Tensor:
        """Objects per scene ``(B,)``: kept candidates whose KL exceeds ``threshold`` nats."""
        return (self.select(x)[2] > threshold).sum(-1)
