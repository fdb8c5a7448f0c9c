r"""Multi-sprite scenes (Nash et al. 2017, "The multi-entity variational autoencoder"; thesis
ch. 5): 64×64 RGB images of up to ``S`` sprites drawn from dSprites' three shapes (square,
ellipse, heart), each with a random colour, scale, rotation and position and present with
probability ``p_exist``. Colours of overlapping sprites add and are clipped at 1:

.. math::
    x_{c,ij} = \min\Big(1,\ \sum_{s=1}^{S} e_s\, a_{s,c}\,
    \mathbb{1}[(i, j) \in \text{sprite}_s]\Big).

Scenes are generated on the fly from a seed, in blocks of :data:`BLOCK` scenes each drawn with
its own generator, so scene ``n`` of a seed is the same however many scenes are asked for and
no files are involved. Every scene carries its ground truth (count, shapes, positions, scales,
angles, colours) for counting and disentanglement checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from pgm3d._progress import progress_bar

__all__ = ["BLOCK", "SPRITE_SHAPES", "SpriteScenes", "multi_sprites", "render_sprites"]

#: sprite shapes, in the order of :attr:`SpriteScenes.shapes`
SPRITE_SHAPES = ("square", "ellipse", "heart")
#: scenes drawn per generator; scene ``n`` comes from block ``n // BLOCK``
BLOCK = 256


@dataclass
class SpriteScenes:
    """A batch of scenes and their ground truth (``S`` sprite slots per scene).

    :ivar torch.Tensor images: ``(N, 3, H, W)`` in ``[0, 1]``.
    :ivar torch.Tensor exists: ``(N, S)`` bool, which slots hold a sprite.
    :ivar torch.Tensor shapes: ``(N, S)`` long index into :data:`SPRITE_SHAPES`.
    :ivar torch.Tensor positions: ``(N, S, 2)`` centre ``(x, y)`` as fractions of the width and
        height (``y`` down, as image rows).
    :ivar torch.Tensor scales: ``(N, S)`` half-size as a fraction of the image side.
    :ivar torch.Tensor angles: ``(N, S)`` rotation in radians.
    :ivar torch.Tensor colours: ``(N, S, 3)`` RGB in ``[0, 1]``.
    """

    images: torch.Tensor
    exists: torch.Tensor
    shapes: torch.Tensor
    positions: torch.Tensor
    scales: torch.Tensor
    angles: torch.Tensor
    colours: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index) -> SpriteScenes:
        return SpriteScenes(*(getattr(self, f.name)[index] for f in fields(self)))

    @property
    def count(self) -> torch.Tensor:
        """``(N,)`` number of sprites in each scene."""
        return self.exists.sum(-1)

    def rows(self) -> torch.Tensor:
        """Images flattened to ``(N, 3 H W)`` rows (channel-major), the models' data layout."""
        return self.images.reshape(len(self), -1)


def _inside(shape: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Whether sprite-frame points ``(u, v)`` (unit half-size, ``v`` up) lie in each shape."""
    square = (u.abs() <= 1) & (v.abs() <= 1)
    ellipse = u.square() + (v / 0.5).square() <= 1  # dSprites' ellipse: twice as wide as high
    # the heart curve (x² + y² - 1)³ = x² y³ spans x in ±1.14, y in [-1, 1.25]: fit it in ±1
    hu, hv = 1.14 * u, 1.125 * v + 0.125
    heart = (hu.square() + hv.square() - 1).pow(3) - hu.square() * hv.pow(3) <= 0
    shape = shape[..., None, None]
    return torch.where(shape == 0, square, torch.where(shape == 1, ellipse, heart))


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    k = (torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype) + 6 * h[..., None]) % 6
    return v[..., None] * (1 - s[..., None] * (torch.minimum(k, 4 - k).clamp(0, 1)))


def render_sprites(exists, shapes, positions, scales, angles, colours, size: int = 64):
    """Draw scenes from their sprites (the fields of :class:`SpriteScenes`, each ``(N, S, ...)``):
    each present sprite covers the pixels whose centres fall inside its shape, and the colours
    of overlapping sprites add, clipped at 1.

    :returns: ``(N, 3, size, size)`` float images in ``[0, 1]``.
    """
    centres = (torch.arange(size, dtype=positions.dtype, device=positions.device) + 0.5) / size
    dx = centres.view(1, 1, 1, size) - positions[..., 0, None, None]  # (N, S, 1, W)
    dy = positions[..., 1, None, None] - centres.view(1, 1, size, 1)  # (N, S, H, 1), y up
    cos, sin = angles.cos()[..., None, None], angles.sin()[..., None, None]
    r = scales[..., None, None]
    inside = _inside(shapes, (cos * dx + sin * dy) / r, (cos * dy - sin * dx) / r)
    inside = inside & exists[..., None, None]
    return torch.einsum("nshw,nsc->nchw", inside.to(colours.dtype), colours).clamp(max=1.0)


def _block(n: int, S: int, size: int, p_exist: float, scale_range, g: torch.Generator):
    def u(*shape):
        return torch.rand(*shape, generator=g)

    exists = u(n, S) < p_exist
    shapes = torch.randint(0, len(SPRITE_SHAPES), (n, S), generator=g)
    lo, hi = scale_range
    scales = lo + (hi - lo) * u(n, S)
    angles = 2 * math.pi * u(n, S)
    # keep the centre a half-size from the border so most of every sprite is in view
    positions = scales[..., None] + (1 - 2 * scales[..., None]) * u(n, S, 2)
    colours = _hsv_to_rgb(u(n, S), 0.6 + 0.4 * u(n, S), 0.7 + 0.3 * u(n, S))
    images = render_sprites(exists, shapes, positions, scales, angles, colours, size)
    return images, exists, shapes, positions, scales, angles, colours


def multi_sprites(
    n: int,
    max_sprites: int = 3,
    *,
    size: int = 64,
    seed: int = 0,
    p_exist: float = 0.5,
    scale_range: tuple[float, float] = (0.08, 0.16),
    progress: bool | None = None,
) -> SpriteScenes:
    """``n`` scenes of up to ``max_sprites`` sprites (3 and 8 are the thesis's variants).

    :param int size: image side ``H = W`` (64).
    :param int seed: scene ``k`` depends only on ``seed`` and ``k``.
    :param float p_exist: probability that each sprite slot is filled, independently, so the
        count is Binomial(``max_sprites``, ``p_exist``).
    :param scale_range: half-size of a sprite as a fraction of the side (0.08-0.16: 10 to 20
        pixels across at 64×64).
    :returns: :class:`SpriteScenes` with float32 images in ``[0, 1]``.
    """
    for name, value in (("n", n), ("max_sprites", max_sprites), ("size", size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not 0 <= p_exist <= 1:
        raise ValueError(f"p_exist must be in [0, 1], got {p_exist}")
    lo, hi = scale_range
    if not 0 < lo <= hi < 0.5:
        raise ValueError(f"scale_range must satisfy 0 < low <= high < 0.5, got {scale_range}")
    parts = []
    blocks = range(-(-n // BLOCK))
    for b in progress_bar(blocks, desc="sprites", progress=progress):
        g = torch.Generator().manual_seed(seed * 1_000_003 + b)
        k = min(BLOCK, n - b * BLOCK)
        # draw the whole block and keep its first k scenes, so a prefix never changes
        full = _block(BLOCK, max_sprites, size, p_exist, scale_range, g)
        parts.append([t[:k] for t in full])
    return SpriteScenes(*(torch.cat(ts) for ts in zip(*parts, strict=True)))
