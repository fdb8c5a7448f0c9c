"""Small helpers shared by the family generators."""

from __future__ import annotations

import math

import torch

from pgm3d.data.parts import Box, Frustum, Moved, Part


def columns(*cols: torch.Tensor) -> torch.Tensor:
    """Stack ``(N, 3)`` column vectors into ``(N, 3, 3)`` frames."""
    return torch.stack(cols, -1)


def axis(n: int, k: int) -> torch.Tensor:
    """``(N, 3)`` copies of the unit vector along axis ``k``."""
    e = torch.zeros(n, 3, dtype=torch.float64)
    e[:, k] = 1.0
    return e


def deg(t: torch.Tensor) -> torch.Tensor:
    return t * (math.pi / 180)


def lifting_surface(frame, root, root_chord, tip, tip_chord, thickness, nominal) -> Box:
    """A tapered, swept slab (wing, tail plane, fin): a loft from the root section at ``root``
    to the tip section at ``tip`` with chords along ``frame[:, :, 1]`` and thickness
    ``thickness * chord`` along ``frame[:, :, 0]``.
    """
    h0 = torch.stack([thickness * root_chord / 2, root_chord / 2], -1)
    h1 = torch.stack([thickness * tip_chord / 2, tip_chord / 2], -1)
    return Box.loft(frame, root, h0, tip, h1, nominal)


def leg(top, bottom, radius, taper, nominal=(0.04, 0.03, 0.9)) -> Frustum:
    """A round leg from ``top`` to ``bottom``, narrowing by ``taper`` (bottom/top radius)."""
    return Frustum(top, bottom, radius, radius * taper, ref=(0.0, 0.0, 1.0), nominal=nominal)


def disc(floor: float, height, radius, top_ratio, nominal) -> Frustum:
    """A round base standing on the floor: ``height`` tall, narrowing to ``top_ratio * radius``."""
    n = len(height)
    bottom = torch.zeros(n, 3, dtype=torch.float64)
    bottom[:, 1] = floor
    top = bottom.clone()
    top[:, 1] += height
    return Frustum(bottom, top, radius, radius * top_ratio, nominal=nominal)


def arc_length_for_drop(drop: torch.Tensor, curvature: torch.Tensor) -> torch.Tensor:
    """The length ``L`` of an arc of ``curvature`` that starts vertical and descends by ``drop``:
    ``sin(kappa L) / kappa = drop``, so ``L = drop asin(kappa drop) / (kappa drop)`` (``drop``
    when straight). ``kappa drop`` is kept below 0.99 (a quarter turn at most)."""
    t = (curvature * drop).clamp(-0.99, 0.99)
    safe = torch.where(t.abs() > 1e-9, t, 1.0)
    return drop * torch.where(t.abs() > 1e-9, torch.asin(safe) / safe, 1.0)


def centred(parts: list[Part], existence: torch.Tensor, k: int = 2, points: int = 64) -> list[Part]:
    """The parts moved along axis ``k`` so that each shape's present parts span an interval
    centred on 0 (measured on ``points`` surface points per part): shapes whose articulation
    reaches far one way (a reclined back, a raked fork) still fit in ``[-1, 1]``."""
    lo = hi = None
    for j, part in enumerate(parts):
        p = part.surface(points)[0][..., k]
        present = existence[:, j, None]
        p_lo = torch.where(present, p, torch.inf).amin(-1)
        p_hi = torch.where(present, p, -torch.inf).amax(-1)
        lo = p_lo if lo is None else torch.minimum(lo, p_lo)
        hi = p_hi if hi is None else torch.maximum(hi, p_hi)
    shift = torch.zeros(len(lo), 3, dtype=lo.dtype)
    shift[:, k] = -(lo + hi) / 2
    eye = torch.eye(3, dtype=lo.dtype).expand(len(lo), 3, 3)
    return [Moved(part, eye, torch.zeros_like(shift), shift) for part in parts]
