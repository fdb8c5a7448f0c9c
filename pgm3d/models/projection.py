r"""Differentiable 3D → 2D projections of occupancy grids: the fixed camera of Yan et al. 2016
(perspective transformer nets) and Rezende et al. 2016, and Rezende et al.'s learnable camera
(supplement §A.4).

**Fixed.** Each pixel's ray samples the grid (:func:`~pgm3d.data.render.sample_rays`:
trilinear, in a perspective or orthographic frustum), and the samples :math:`v_1, \dots, v_S`
are reduced to a silhouette, by the maximum (PTN's projection,
:math:`S(u) = \max_s v_s(u)`) or by absorption (the ray's light absorbed in proportion to the
occupancy it crosses, :math:`S(u) = 1 - \exp(-\kappa \sum_s v_s(u)\,\Delta t)`). Both are
differentiable in the voxels, so a voxel decoder trains from images alone.

**Learnable** (:class:`LearnableProjection`, §A.4): a spatial transformer on the canvas (an
affine map learned once, shared by every use — "multiple instances with shared parameters"),
then 3D convolutions, the depth axis folded into channels, and 2D convolutions to an image of
logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pgm3d.data.render import Camera, sample_rays
from pgm3d.models.spatial import spatial_transform

__all__ = ["LearnableProjection", "project"]


def project(volumes: torch.Tensor, camera: Camera, size: int, *, samples: int | None = None,
            reduce: str = "max", absorption: float = 10.0) -> torch.Tensor:  # fmt: skip
    """Silhouettes ``(N, size, size)`` of occupancies ``(N, R, R, R)`` in [0, 1] seen by
    ``camera``.

    :param samples: points per ray (default ``4 R``).
    :param reduce: ``"max"`` (PTN) or ``"absorption"`` (density ``absorption`` per unit length
        at full occupancy: a ray crossing one voxel of a 32³ grid keeps
        :math:`e^{-10 \\cdot 2/32} = 54\\%` of its light).
    """
    if reduce not in ("max", "absorption"):
        raise ValueError(f"reduce must be 'max' or 'absorption', got {reduce!r}")
    if absorption <= 0:
        raise ValueError(f"absorption must be > 0, got {absorption}")
    occ, t = sample_rays(volumes, camera, size, samples or 4 * volumes.shape[-1])
    if reduce == "max":
        return occ.amax(1)
    step = t[1] - t[0]
    return 1 - torch.exp(-absorption * step * occ.sum(1))


class LearnableProjection(nn.Module):
    """Rezende et al.'s learnable camera (§A.4): ``(N, R, R, R)`` canvases to ``(N, R, R)``
    image logits.

    :param int resolution: ``R``.
    :param int channels: channels of the 3D and 2D convolutions.
    """

    def __init__(self, resolution: int = 32, channels: int = 16):
        super().__init__()
        if resolution < 4 or channels < 1:
            raise ValueError("resolution must be >= 4 and channels >= 1")
        self.resolution = resolution
        # the affine map of the spatial transformer, starting at the identity
        self.theta = nn.Parameter(torch.eye(3, 4))
        self.conv3d = nn.Sequential(
            nn.Conv3d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv3d(channels, channels, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        # depth folded into channels: (C, D, H, W) -> (C * D, H, W)
        self.conv2d = nn.Sequential(
            nn.Conv2d(channels * resolution, 4 * channels, 1), nn.ReLU(),
            nn.Conv2d(4 * channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 1, 3, padding=1),
        )  # fmt: skip

    def forward(self, volumes: torch.Tensor) -> torch.Tensor:
        """Image logits ``(N, R, R)``, row 0 at the top, seen along ``-z`` like a
        :class:`~pgm3d.data.render.Camera` at azimuth 0 (before the learned map moves it)."""
        N, R = volumes.shape[0], self.resolution
        if volumes.shape[1:] != (R, R, R):
            raise ValueError(f"volumes must be (N, {R}, {R}, {R}), got {tuple(volumes.shape)}")
        v = volumes.unsqueeze(1).to(self.theta)
        v = spatial_transform(v, self.theta.expand(N, 3, 4), R)  # (N, 1, X, Y, Z)
        h = self.conv3d(v)  # (N, C, X, Y, Z)
        # fold z (the depth along the view) into channels; the image is (y, x), y up
        h = h.permute(0, 1, 4, 3, 2).reshape(N, -1, R, R).flip(-2)
        return self.conv2d(h)[:, 0]

    def silhouette(self, volumes: torch.Tensor) -> torch.Tensor:
        """Occupancy probabilities of the image, ``(N, R, R)``."""
        return F.sigmoid(self(volumes))
