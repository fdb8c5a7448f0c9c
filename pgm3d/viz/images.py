"""Figures of images and their completions."""

from __future__ import annotations

import os

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["completion_grid", "image_grid", "reveal_figure"]


def _image(row: torch.Tensor, shape) -> np.ndarray:
    return row.detach().cpu().double().numpy().reshape(shape)


def _panels(
    panels: list[list[np.ndarray]],
    path,
    *,
    size: tuple[float, float],
    vmin: float,
    vmax: float,
    cmap: str,
    row_titles=None,
    col_titles=None,
    title=None,
    dpi: int = 100,
) -> str:
    """Draw a grid of panels: ``(H, W, 3)`` arrays as RGB in ``[0, 1]``, ``(H, W)`` arrays with
    ``cmap`` between ``vmin`` and ``vmax``."""
    R, C = len(panels), len(panels[0])
    fig = Figure(figsize=size)
    axes = fig.subplots(R, C, squeeze=False)
    for i, row in enumerate(panels):
        for j, img in enumerate(row):
            ax = axes[i, j]
            if img.ndim == 3:
                ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
            else:
                ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0 and col_titles:
                ax.set_title(col_titles[j], fontsize=7)
            if j == 0 and row_titles:
                ax.set_ylabel(row_titles[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return str(path)


def _grey(image: np.ndarray) -> np.ndarray:
    """Pixels in ``[-1, 1]`` as grey RGB in ``[0, 1]``."""
    return np.repeat(((image + 1) / 2)[..., None], 3, -1)


def _colour(values: np.ndarray, vmax: float, cmap: str = "magma") -> np.ndarray:
    """Scalar maps as RGB through ``cmap`` over ``[0, vmax]``."""
    from matplotlib import colormaps

    return colormaps[cmap](np.clip(values / max(vmax, 1e-12), 0, 1))[..., :3]


def completion_grid(
    truth: torch.Tensor,
    mask: torch.Tensor,
    completions: dict[str, torch.Tensor],
    image_shape: tuple[int, int],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    error_row: bool = False,
) -> str:
    """Save a grid: one row per image; columns truth, observed pixels, then each completion.

    Missing pixels in the "observed" column are drawn in red. Pixel values are in ``[-1, 1]``.

    :param truth: ``(n, H * W)`` complete images.
    :param mask: ``(n, H * W)`` bool, True = observed.
    :param completions: method name -> ``(n, H * W)`` completed images.
    :param path: PNG file to write.
    :param bool error_row: under each image, the pixelwise squared error of each completion
        (the thesis's Fig. 4.1), one colour scale for the whole figure.
    :returns: ``str(path)``.
    """
    n = truth.shape[0]
    cols = ["truth", "observed", *completions]
    errors = {m: (c.detach().cpu().double() - truth.detach().cpu().double()).pow(2)
              for m, c in completions.items()}  # fmt: skip
    vmax = max((float(e.max()) for e in errors.values()), default=1.0)
    blank = np.ones((*image_shape, 3))
    rows = []
    for i in range(n):
        observed = _grey(_image(truth[i], image_shape))
        observed[~mask[i].cpu().numpy().reshape(image_shape)] = (0.85, 0.1, 0.1)
        panels = [_grey(_image(truth[i], image_shape)), observed]
        rows.append(panels + [_grey(_image(c[i], image_shape)) for c in completions.values()])
        if error_row:
            maps = [_colour(_image(e[i], image_shape), vmax) for e in errors.values()]
            rows.append([blank, blank, *maps])
    size = (1.1 * len(cols), 1.1 * len(rows) * image_shape[0] / image_shape[1] + 0.4)
    row_titles = ["image", f"sq. error (0-{vmax:.2g})"] * n if error_row else None
    return _panels(
        rows,
        path,
        size=size,
        vmin=-1,
        vmax=1,
        cmap="gray",
        col_titles=cols,
        row_titles=row_titles,
        title=title,
        dpi=110,
    )


def reveal_figure(
    means: torch.Tensor,
    stds: torch.Tensor,
    revealed: list[int],
    image_shape: tuple[int, int],
    path: str | os.PathLike,
    *,
    title: str | None = None,
) -> str:
    """The thesis's Fig. 4.2: how the posterior predictive mean (top) and standard deviation
    (bottom) of the unobserved pixels change as more of an image is revealed. Pixels above the
    red line are observed, those below imputed.

    :param means: ``(S, H * W)`` predictive means (observed pixels: their values).
    :param stds: ``(S, H * W)`` predictive standard deviations (observed pixels: 0).
    :param revealed: the number of observed image rows of each of the ``S`` columns.
    :returns: ``str(path)``.
    """
    vmax = float(stds.max())
    top, bottom = [], []
    for s, r in enumerate(revealed):
        m = _grey(_image(means[s], image_shape))
        sd = _colour(_image(stds[s], image_shape), vmax, "viridis")
        for img in (m, sd):
            if 0 < r < image_shape[0]:
                img[r - 1, :] = (0.9, 0.1, 0.1)  # the red line: the last observed row
        top.append(m)
        bottom.append(sd)
    H, W = image_shape
    return _panels(
        [top, bottom],
        path,
        size=(1.0 * len(revealed) * W / H + 0.6, 2.6),
        vmin=0,
        vmax=1,
        cmap="gray",
        col_titles=[f"{r} rows seen" for r in revealed],
        row_titles=["mean", f"s.d. (0-{vmax:.2g})"],
        title=title,
        dpi=110,
    )


def image_grid(
    images,
    path: str | os.PathLike,
    *,
    row_titles: list[str] | None = None,
    col_titles: list[str] | None = None,
    title: str | None = None,
    cmap: str | None = None,
    panel: float = 1.1,
) -> str:
    """Save a grid of images, one panel per entry of ``images``.

    :param images: ``(R, C, 3, H, W)`` RGB in ``[0, 1]``, or ``(R, C, H, W)`` scalar maps
        (drawn with ``cmap``, each panel scaled to the whole grid's range; NaN is blank).
    :param row_titles: a label left of each row.
    :param col_titles: a title above each column.
    :returns: ``str(path)``.
    """
    images = torch.as_tensor(images).detach().cpu().float()
    if images.dim() not in (4, 5):
        raise ValueError(f"images must be (R, C, 3, H, W) or (R, C, H, W), got {images.shape}")
    R, C = images.shape[:2]
    if images.dim() == 5:
        images = images.permute(0, 1, 3, 4, 2)  # channels last for imshow
    rows = [[images[i, j].numpy() for j in range(C)] for i in range(R)]
    return _panels(
        rows,
        path,
        size=(panel * C + 0.6, panel * R + 0.4),
        vmin=float(images.nan_to_num(float("inf")).min()),  # NaN panels: left blank
        vmax=float(images.nan_to_num(float("-inf")).max()),
        cmap=cmap,
        row_titles=row_titles,
        col_titles=col_titles,
        title=title,
    )
