"""Missingness masks. Convention everywhere in pgm3d: bool, shaped like the data, True = observed.

Every sampler here has the signature ``sampler(shape, *, generator=None, device=None)`` so any
of them (or a ``functools.partial`` of one) can be handed to code that draws fresh masks, such
as :meth:`pgm3d.inference.DenoisingEncoder.fit`.
"""

from __future__ import annotations

import torch

__all__ = [
    "DROPS",
    "QUARTERS",
    "drop_parts",
    "half_volume_mask",
    "hide_for_completion",
    "keep_one_observed",
    "quarter_mask",
    "random_mask",
]

#: what :func:`hide_for_completion` can hide, and the data each needs
DROPS = {
    "parts": "whole parts of shapes (shape data)",
    "random": "entries at random (any rows)",
    "quarters": "one quarter of each image (image data)",
    "half": "one half of each voxel grid (voxel data)",
}

#: names of the four image quarters, in the index order used by :func:`quarter_mask`
QUARTERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def _check_shape(shape) -> tuple[int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (N, D) with N, D >= 1, got {shape}")
    return shape


def _draw_device(generator, device):
    # draw where the generator lives, so one seeded CPU generator gives the same masks on
    # every device; the result is then moved to ``device``
    return generator.device if generator is not None else device


def random_mask(
    shape,
    p_missing: float = 0.5,
    *,
    generator: torch.Generator | None = None,
    device=None,
) -> torch.Tensor:
    """Missing completely at random: each entry is missing independently with ``p_missing``.

    :param shape: ``(N, D)``.
    :param float p_missing: probability that an entry is missing, in ``[0, 1]``.
    :param generator: torch generator; the masks are drawn on its device and moved to ``device``.
    :returns: bool ``(N, D)``, True = observed.
    """
    shape = _check_shape(shape)
    if not 0.0 <= p_missing <= 1.0:
        raise ValueError(f"p_missing must be in [0, 1], got {p_missing}")
    draws = torch.rand(shape, generator=generator, device=_draw_device(generator, device))
    return (draws >= p_missing).to(device)


def keep_one_observed(mask: torch.Tensor, *, generator: torch.Generator | None = None):
    """``mask`` with one entry, drawn uniformly, observed in every row that had none (a row with
    nothing observed can be neither trained on nor completed). Returns a new mask."""
    mask = mask.clone()
    empty = (~mask.any(-1)).nonzero().flatten()
    if len(empty):
        cols = torch.randint(mask.shape[-1], (len(empty),), generator=generator)
        mask[empty, cols.to(mask.device)] = True
    return mask


def quarter_mask(
    shape,
    image_shape: tuple[int, int],
    *,
    quarter: int | torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    device=None,
) -> torch.Tensor:
    """One quarter of each image missing (thesis ch. 4, "quarters" masks).

    The image is split at ``H // 2`` rows and ``W // 2`` columns; quarter ``q`` follows
    :data:`QUARTERS`. Images are flattened row-major, ``D = H * W``.

    :param shape: ``(N, D)``.
    :param image_shape: ``(H, W)`` with ``H, W >= 2``.
    :param quarter: ``None`` draws one quarter per row uniformly; an int fixes it for every
        row; a ``(N,)`` long tensor gives each row's quarter.
    :returns: bool ``(N, D)``, True = observed.
    """
    N, D = _check_shape(shape)
    H, W = (int(s) for s in image_shape)
    if H < 2 or W < 2 or H * W != D:
        raise ValueError(f"image_shape {image_shape} must be at least 2x2 with H*W = D = {D}")
    if quarter is None:
        q = torch.randint(0, 4, (N,), generator=generator, device=_draw_device(generator, device))
        q = q.to(device)
    else:
        q = torch.as_tensor(quarter, device=device).long().expand(N)
        if bool(((q < 0) | (q > 3)).any()):
            raise ValueError("quarter must be in 0..3")
    rows = torch.arange(H, device=device) >= H // 2  # bottom half
    cols = torch.arange(W, device=device) >= W // 2  # right half
    in_bottom = (q // 2).bool()[:, None, None]
    in_right = (q % 2).bool()[:, None, None]
    hidden = (rows[None, :, None] == in_bottom) & (cols[None, None, :] == in_right)
    return ~hidden.reshape(N, D)


def half_volume_mask(shape, resolution: int, *, axis: int = 0, device=None) -> torch.Tensor:
    """The front half of each voxel grid missing (volume completion, Liu et al. 2017 §4.4):
    the first ``R // 2`` slices along ``axis`` of grids flattened from ``(R, R, R)``.

    :param shape: ``(N, R³)``.
    :param int resolution: ``R``.
    :param int axis: 0, 1 or 2, the grid axis that is cut.
    :returns: bool ``(N, R³)``, True = observed.
    """
    N, D = _check_shape(shape)
    R = int(resolution)
    if R < 2 or R**3 != D:
        raise ValueError(f"resolution {resolution} must be at least 2 with R³ = D = {D}")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    front = torch.arange(R, device=device) < R // 2
    hidden = front.view([R if a == axis else 1 for a in range(3)]).expand(R, R, R)
    return (~hidden).reshape(1, D).expand(N, D).clone()


def drop_parts(
    existence: torch.Tensor,
    p_drop: float = 0.25,
    *,
    generator: torch.Generator | None = None,
    max_tries: int = 1000,
) -> torch.Tensor:
    """Choose parts to hide for shape completion (Nash & Williams 2017, §3.5): each present part
    is dropped independently with probability ``p_drop``, redrawn for a shape until at least one
    part is dropped and at least one is kept.

    :param existence: ``(N, K)`` bool. :returns: ``(N, K)`` bool, True = dropped (always present).
    :raises ValueError: a shape with fewer than two parts (nothing can be both kept and dropped).
    """
    if existence.dim() != 2 or existence.dtype != torch.bool:
        raise ValueError(
            f"existence must be a bool (N, K) tensor, "
            f"got {existence.dtype} {tuple(existence.shape)}"
        )
    if not 0 < p_drop < 1:
        raise ValueError(f"p_drop must be in (0, 1), got {p_drop}")
    n_parts = existence.sum(-1)
    if (n_parts < 2).any():
        raise ValueError("every shape needs at least two parts to drop some and keep some")
    e = existence.cpu()
    dropped = torch.zeros_like(e)
    todo = torch.ones(len(e), dtype=torch.bool)
    for _ in range(max_tries):
        draw = (torch.rand(e.shape, generator=generator) < p_drop) & e
        count = draw.sum(-1)
        ok = todo & (count > 0) & (count < n_parts.cpu())
        dropped[ok] = draw[ok]
        todo &= ~ok
        if not todo.any():
            return dropped.to(existence.device)
    raise RuntimeError(f"could not draw valid drops in {max_tries} tries")  # p_drop near 0 or 1


def hide_for_completion(
    data,
    x: torch.Tensor,
    mask: torch.Tensor,
    *,
    drop: str | None = None,
    p_missing: float | None = None,
    image_shape: tuple[int, int] | None = None,
    part_of_entry: torch.Tensor | None = None,
    point_dim: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide entries of test rows for a completion task: the policy of ``pgm3d complete``,
    ``evaluate`` and ``bench``.

    :param data: the test set the rows ``x`` come from (a :class:`~pgm3d.data.ShapeSet`, a
        :class:`~pgm3d.data.VoxelSet` or a tensor of rows); it sets the default ``drop``.
    :param mask: the rows' own observation mask; hidden entries are always observed ones.
    :param str drop: one of :data:`DROPS` (default: ``"parts"`` for shapes, ``"half"`` for
        voxels, else ``"random"``).
    :param float p_missing: parts: the chance a part is dropped (0.25); random: the chance an
        entry is hidden (0.5).
    :param image_shape: ``(H, W)`` of image rows, for ``"quarters"``.
    :param part_of_entry: the part of each column of ``x`` (a shape model's layout); by
        default the point columns of flattened shape rows.
    :param int point_dim: hide ``"random"`` entries among the first ``point_dim`` columns only
        (a shape model's existence flags stay observed).
    :returns: ``(kept, hidden)``: the mask with the entries hidden, and the hidden entries.
    :raises ValueError: a ``drop`` the data cannot take, or an unknown one.
    """
    from pgm3d.data.datasets import data_kind

    kind = data_kind(data)
    shaped, voxels = kind == "shapes", kind == "voxels"
    drop = drop or ("parts" if shaped else "half" if voxels else "random")
    hidden = torch.zeros_like(mask)
    if drop == "parts":
        if not shaped:
            raise ValueError("--drop parts needs shape data; use random or quarters for rows")
        p = 0.25 if p_missing is None else p_missing
        dropped = drop_parts(data.existence.cpu(), p, generator=generator).to(x.device)
        if part_of_entry is None:  # flattened shapes: 6 (or 3) entries per point
            width = x.shape[-1] // data.points.shape[1]
            part_of_entry = data.part_of_point.to(x.device).repeat_interleave(width)
        hidden[:, : part_of_entry.numel()] = dropped[:, part_of_entry]
    elif drop == "random":
        p = 0.5 if p_missing is None else p_missing
        d = point_dim or x.shape[-1]
        drawn = random_mask((x.shape[0], d), p, generator=generator).to(x.device)
        hidden[:, :d] = ~drawn
    elif drop == "half":
        if not voxels:
            raise ValueError("--drop half needs voxel data (voxel-classes, a voxel file or folder)")
        hidden = ~half_volume_mask(x.shape, data.resolution, device=x.device)
    elif drop == "quarters":
        if image_shape is None:
            raise ValueError("--drop quarters needs image data (digits, frey)")
        hidden = ~quarter_mask(x.shape, image_shape, generator=generator).to(x.device)
    else:
        raise ValueError(f"unknown --drop {drop!r}; choose one of: {', '.join(DROPS)}")
    return mask & ~hidden, hidden & mask
