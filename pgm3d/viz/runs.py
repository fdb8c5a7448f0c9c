"""The figures of ``pgm3d complete`` and ``pgm3d sample``: one function per figure, drawing the
data's kind as it is best seen (images as a grid, shapes as point clouds, voxels as volumes)."""

from __future__ import annotations

from pathlib import Path

import torch

from pgm3d.data.datasets import data_kind
from pgm3d.viz.charts import parity_plot
from pgm3d.viz.images import completion_grid, image_grid
from pgm3d.viz.shapes import render_shapes, voxel_completion_grid

__all__ = ["completion_figure", "samples_figure"]


def _points(rows: torch.Tensor, num_points: int):
    """Points and normals ``(N, P, 3)`` of flattened shape rows (normals None without them)."""
    P = num_points
    flat = rows[:, : P * 6] if rows.shape[-1] >= P * 6 else rows[:, : P * 3]
    per_point = flat.reshape(rows.shape[0], P, -1).detach().cpu().float()
    normals = per_point[..., 3:] if per_point.shape[-1] == 6 else None
    return per_point[..., :3], normals


def completion_figure(
    path: str | Path,
    test,
    x: torch.Tensor,
    kept: torch.Tensor,
    filled: dict[str, torch.Tensor],
    *,
    image_shape: tuple[int, int] | None = None,
    rows: int = 4,
) -> bool:
    """The first ``rows`` test rows: truth, what was observed, and each method's completion.

    :param test: the test set ``x`` was read from (its kind picks the picture).
    :param kept: the mask of observed entries after hiding, shaped like ``x``.
    :param filled: completed rows by method name.
    :param image_shape: ``(H, W)`` when the rows are images.
    :returns: whether a figure was written (always, now: plain rows get the imputed against
        the true value of every hidden entry).
    """
    n = min(rows, x.shape[0])
    if image_shape is None and data_kind(test) not in ("voxels", "shapes"):
        hidden = ~kept.cpu()
        truth = x.cpu()[hidden]
        values = {m: v.cpu()[hidden] for m, v in filled.items()}
        parity_plot(truth, values, path)
        return True
    filled = {m: v[:n].cpu() for m, v in filled.items()}
    if image_shape is not None:
        completion_grid(x[:n].cpu(), kept[:n].cpu(), filled, image_shape, path)
        return True
    kind = data_kind(test)
    if kind == "voxels":
        voxel_completion_grid(x[:n], kept[:n], filled, path)
        return True
    if kind != "shapes":
        return False
    present = test.point_mask()[:n].cpu()
    P = present.shape[1]
    observed = kept[:n, : P * 6 : 6].cpu() if kept.shape[-1] >= P * 6 else present
    columns = [("truth", x[:n].cpu(), present), ("observed", x[:n].cpu(), observed & present)]
    columns += [(m, v, present) for m, v in filled.items()]
    points, normals, masks, titles = [], [], [], []
    for i in range(n):
        for name, data, m in columns:
            p, nrm = _points(data[i : i + 1], P)
            points.append(p[0])
            normals.append(nrm[0] if nrm is not None else torch.zeros_like(p[0]))
            masks.append(m[i])
            titles.append(name if i == 0 else "")
    render_shapes(
        torch.stack(points),
        path,
        ncols=len(columns),
        normals=torch.stack(normals),
        masks=torch.stack(masks),
        part_of_point=test.part_of_point.cpu(),
        titles=titles,
        title="completion of dropped parts (each row one test shape)",
    )
    return True


def samples_figure(
    path: str | Path,
    model,
    rows: torch.Tensor,
    *,
    shapes: dict | None = None,
    image_shape: tuple[int, int] | None = None,
    title: str = "samples",
) -> bool:
    """Samples of a model as its data's kind is drawn.

    :param rows: ``(n, D)`` samples (voxel grids ``(n, r, r, r)``, scenes ``(n, 3·S·S)``).
    :param shapes: for a shape model, :meth:`sample_shapes`'s points, normals and point mask.
    :param image_shape: ``(H, W)`` of image rows (digits, Frey faces).
    :returns: whether a figure was written (plain rows have no picture).
    """
    n, kind = rows.shape[0], model.data_kind
    if kind == "shapes":
        render_shapes(
            shapes["points"].cpu(),
            path,
            normals=None if shapes["normals"] is None else shapes["normals"].cpu(),
            masks=shapes["point_mask"].cpu(),
            part_of_point=model.part_of_entry[:: model.width].cpu(),
            title=f"{title}: {n} samples",
        )
    elif kind == "voxels":
        grids = (rows > 0.5).cpu()
        render_shapes(grids, path, kind="voxels", title=f"{title}: {n} samples (occupancy > 0.5)")
    elif kind == "scenes":
        S, cols = model.image_size, min(8, n)
        kept = n - n % cols or n
        grid = rows.cpu().reshape(-1, 3, S, S)[:kept].reshape(-1, cols, 3, S, S)
        image_grid(grid, path, title=f"{title}: samples")
    elif image_shape is not None:
        flat = rows.reshape(n, -1).cpu()
        cols = min(8, n)
        R = -(-n // cols)  # the last row padded blank
        padded = torch.full((R * cols, flat.shape[1]), float("nan"))
        padded[:n] = flat.clamp(-1, 1)
        image_grid(padded.reshape(R, cols, *image_shape), path, cmap="gray", panel=0.9)
    else:
        return False
    return True
