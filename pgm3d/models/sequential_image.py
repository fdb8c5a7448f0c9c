r"""Rezende et al. 2016's sequential model trained from images only: the volumetric canvas is a
latent structure, and the likelihood is on a 2D view of it, through a fixed camera or a learnable
projection (supplement §A.4).

The generative steps are :class:`~pgm3d.models.SequentialVolumeModel`'s (the same LSTM state,
the same volumetric writes into an ``R³`` canvas :math:`v_T`); the observation is an image

.. math::
    x \sim \prod_u \mathrm{Bernoulli}(\pi_u), \qquad
    \pi = P\big(\sigma(b + v_T); \alpha\big) \;\text{(fixed camera } \alpha\text{)}
    \quad\text{or}\quad \pi = \sigma\big(f_{\text{proj}}(b + v_T)\big)
    \;\text{(learnable)},

with :math:`P` the maximum occupancy along each camera ray
(:func:`~pgm3d.models.projection.project`) and :math:`f_{\text{proj}}` Rezende et al.'s
learnable camera (:class:`~pgm3d.models.projection.LearnableProjection`);
and the guide reads 2D glimpses of the image (a spatial transformer on the image, eq. 1) into
the same posterior and transition as the volumetric model's. :meth:`volumes` decodes the 3D
structure the model inferred from an image, so the recovered volumes can be scored against the
truth.

Rows are flattened images ``(B, S²)`` in [0, 1] (silhouettes, row 0 at the top).
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pgm3d.data.render import Camera
from pgm3d.missing import clean_missing
from pgm3d.models.base import check_n
from pgm3d.models.projection import LearnableProjection, project
from pgm3d.models.sequential_volume import SequentialVolumeModel
from pgm3d.models.spatial import AffineHead

__all__ = ["SequentialImageModel"]


class SequentialImageModel(SequentialVolumeModel):
    """The sequential volumetric model with its likelihood on an ``image_size²`` view.

    :param str camera: ``"fixed"`` (a known camera, :class:`~pgm3d.data.render.Camera` at
        ``azimuth``, ``elevation`` with ``projection``) or ``"learnable"``.
    :param str projection: of the fixed camera, ``"orthographic"`` or ``"perspective"``.
    :param int image_size: ``S`` (for ``"learnable"``, equal to ``resolution``).

    Other parameters as :class:`~pgm3d.models.SequentialVolumeModel` (no context).
    """

    def __init__(
        self,
        resolution: int = 32,
        steps: int = 4,
        latent_dim: int = 8,
        hidden: int = 128,
        patch: int = 8,
        *,
        image_size: int = 32,
        camera: str = "fixed",
        azimuth: float = 0.0,
        elevation: float = math.radians(30),
        projection: str = "orthographic",
        transform: str = "separable",
    ):
        super().__init__(resolution, steps, latent_dim, hidden, patch, transform=transform)
        if camera not in ("fixed", "learnable"):
            raise ValueError(f"camera must be 'fixed' or 'learnable', got {camera!r}")
        if camera == "learnable" and image_size != resolution:
            raise ValueError("a learnable projection draws resolution² images: set image_size")
        self.camera_kind, self.image_size = camera, image_size
        # a perspective camera is render_views' (distance 3, 40° field of view)
        self.view = Camera(azimuth, elevation, projection=projection)
        self.data_dim = image_size**2
        if camera == "learnable":
            self.projection = LearnableProjection(resolution, channels=16)
        # the guide reads 2D glimpses of the image
        self.read_where = AffineHead(hidden, 2, full=transform == "affine", init_scale=1.0)
        self.read_features = nn.Sequential(nn.Linear(patch**2, hidden), nn.ReLU())

    @property
    def row_shape(self) -> tuple[int, ...]:
        """A row is a flattened image of this shape."""
        return (self.image_size, self.image_size)

    data_kind = "rows"

    def image_probs(self, canvas: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities ``(*lead, S²)`` of canvas logits ``(*lead, R³)``."""
        lead, R = canvas.shape[:-1], self.resolution
        grids = canvas.reshape(-1, R, R, R)
        if self.camera_kind == "learnable":
            probs = torch.sigmoid(self.projection(grids))
        else:
            probs = project(torch.sigmoid(grids), self.view, self.image_size)
        return probs.reshape(*lead, -1).clamp(1e-4, 1 - 1e-4)

    def reading_grid(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """What the guide reads: the rows as images ``(B, 1, S, S)``, missing pixels empty."""
        S = self.image_size
        return clean_missing(x, mask).reshape(-1, 1, S, S)

    def observation(self, canvas: torch.Tensor):
        """:math:`p(x \\mid v_T)`: Bernoulli pixels of the canvas's view."""
        return dist.Bernoulli(probs=self.image_probs(canvas), validate_args=False)

    @torch.no_grad()
    def volumes(self, x: torch.Tensor, num_samples: int = 8) -> torch.Tensor:
        """The 3D structure inferred from images ``x (B, S²)``: the canvas occupancy averaged
        over ``num_samples`` posterior draws, ``(B, R, R, R)``."""
        R, total = self.resolution, 0.0
        for _ in range(num_samples):
            trace = pyro.poutine.trace(self.guide).get_trace(x)
            z = torch.stack([trace.nodes[n]["value"] for n in self.latent_sites], 1)
            total = total + torch.sigmoid(self.canvas_logits(z))
        return (total / num_samples).reshape(-1, R, R, R)

    @torch.no_grad()
    def sample(self, n: int, *, c=None, generator=None, mean: bool = False,
               return_latents: bool = False):  # fmt: skip
        """``n`` images ``(n, S, S)`` from the prior (pixel draws, or probabilities with
        ``mean=True``); with ``return_latents`` also the latents ``(n, T, latent_dim)``."""
        check_n(n)
        ref = self.background
        z = torch.randn(n, self.steps, self.latent_dim, generator=generator, dtype=ref.dtype,
                        device=ref.device)  # fmt: skip
        probs = self.image_probs(self.canvas_logits(z))
        if not mean:
            probs = torch.bernoulli(probs, generator=generator)
        images = probs.reshape(n, self.image_size, self.image_size)
        return (images, z) if return_latents else images
