r"""Shapes with their 2D views: voxel grids rendered at known cameras
(:mod:`pgm3d.data.render`), the data of the image-to-3D models (Yan et al. 2016's perspective
transformer nets, Rezende et al. 2016's image-trained models, Wu et al. 2016's image encoder).

By default each shape is seen from PTN's 24 cameras: azimuths every 15°, elevation 30°, a
perspective camera at distance 3 with a 40° field of view (which frames the unit cube);
:func:`render_views` takes other cameras, random azimuths, depth or shaded images.
``open_data("<voxel set>-views")`` (``voxel-classes-views``, ``primitives-views``, …) renders a
named voxel set this way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from pgm3d.data.render import KINDS, Camera, render_voxels
from pgm3d.data.voxels import VoxelSet

__all__ = ["ViewSet", "render_views"]


@dataclass
class ViewSet:
    """Voxel shapes and images of each from several cameras.

    :ivar VoxelSet shapes: the ``N`` shapes (labels, classes and split with them).
    :ivar torch.Tensor images: ``(N, V, S, S)`` views, row 0 at the top: silhouettes and shaded
        images in [0, 1], depth in scene units (0 where the ray meets nothing).
    :ivar torch.Tensor azimuth: ``(N, V)`` radians.
    :ivar torch.Tensor elevation: ``(N, V)`` radians.
    :ivar str kind: ``"silhouette"``, ``"depth"`` or ``"shaded"``.
    :ivar dict camera: the cameras' other settings (:class:`~pgm3d.data.render.Camera` fields).
    """

    shapes: VoxelSet
    images: torch.Tensor
    azimuth: torch.Tensor
    elevation: torch.Tensor
    kind: str = "silhouette"
    camera: dict | None = None

    def __post_init__(self):
        n = len(self.shapes)
        if self.images.dim() != 4 or self.images.shape[0] != n:
            raise ValueError(f"images must be ({n}, V, S, S), got {tuple(self.images.shape)}")
        if (
            self.azimuth.shape != self.images.shape[:2]
            or self.elevation.shape != self.azimuth.shape
        ):
            raise ValueError("azimuth and elevation must be (N, V), one per image")

    def __len__(self) -> int:
        return len(self.shapes)

    @property
    def resolution(self) -> int:
        return self.shapes.resolution

    @property
    def labels(self) -> torch.Tensor:
        return self.shapes.labels

    def cameras(self, i: int) -> list[Camera]:
        """The cameras of shape ``i``'s views."""
        return [Camera(float(a), float(e), **(self.camera or {}))
                for a, e in zip(self.azimuth[i], self.elevation[i], strict=True)]  # fmt: skip

    def __getitem__(self, index) -> ViewSet:
        idx = torch.as_tensor(index) if not isinstance(index, slice) else index
        return replace(self, shapes=self.shapes[index], images=self.images[idx],
                       azimuth=self.azimuth[idx], elevation=self.elevation[idx])  # fmt: skip

    def subset(self, split: str) -> ViewSet:
        """The shapes of one split (``"train"`` or ``"test"``) with their views."""
        return self[torch.from_numpy(np.asarray(self.shapes.split) == split)]


def render_views(
    shapes: VoxelSet,
    *,
    views: int = 24,
    size: int | None = None,
    kind: str = "silhouette",
    elevation: float = math.radians(30),
    random_azimuth: bool = False,
    seed: int = 0,
    batch: int = 64,
    **camera,
) -> ViewSet:
    """Render every shape from ``views`` cameras.

    :param views: cameras per shape: azimuths ``360° / views`` apart starting at 0, or drawn
        uniformly (``random_azimuth``, seeded); all at ``elevation``.
    :param size: image size (default: the grids' resolution).
    :param camera: other :class:`~pgm3d.data.render.Camera` settings (default: perspective,
        distance 3, 40° field of view).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if isinstance(views, bool) or not isinstance(views, int) or views < 1:
        raise ValueError(f"views must be a positive int, got {views!r}")
    size = size or shapes.resolution
    camera = {"projection": "perspective", "distance": 3.0, "fov": math.radians(40)} | camera
    n = len(shapes)
    if random_azimuth:
        g = torch.Generator().manual_seed(seed)
        azimuth = torch.rand(n, views, generator=g, dtype=torch.float64) * 2 * math.pi
    else:
        azimuth = (torch.arange(views, dtype=torch.float64) * 2 * math.pi / views).expand(n, -1)
    elev = torch.full((n, views), float(elevation), dtype=torch.float64)
    images = torch.zeros(n, views, size, size)
    vox = shapes.voxels
    # shapes that share a camera are rendered together
    for v in range(views):
        if random_azimuth:
            for i in range(n):
                cam = Camera(float(azimuth[i, v]), float(elevation), **camera)
                images[i, v] = render_voxels(vox[i : i + 1], cam, size, kind)[0].float()
        else:
            cam = Camera(float(azimuth[0, v]), float(elevation), **camera)
            for start in range(0, n, batch):
                part = vox[start : start + batch]
                images[start : start + batch, v] = render_voxels(part, cam, size, kind).float()
    return ViewSet(shapes, images, azimuth.clone(), elev, kind, camera)
