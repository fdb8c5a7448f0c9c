"""Figures of images and their completions."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["completion_grid", "image_grid"]


def _image(row: torch.Tensor, shape) -> np.ndarray:
    return row.detach().cpu().double().numpy().reshape(shape)


def completion_grid(
    truth: torch.Tensor,
    mask: torch.Tensor,
    completions: dict[str, torch.Tensor],
    image_shape: tuple[int, int],
    path: str | os.PathLike,
    *,
    title: str | None = None,
) -> str:
    """Save a grid: one row per image; columns truth, observed pixels, then each completion.

    Missing pixels in the "observed" column are drawn in red. Pixel values are in ``[-1, 1]``.

    :param truth: ``(n, H * W)`` complete images.
    :param mask: ``(n, H * W)`` bool, True = observed.
    :param completions: method name -> ``(n, H * W)`` completed images.
    :param path: PNG file to write.
    :returns: ``str(path)``.
    """
    n = truth.shape[0]
    cols = ["truth", "observed", *completions]
    fig, axes = plt.subplots(
        n,
        len(cols),
        figsize=(1.1 * len(cols), 1.1 * n * image_shape[0] / image_shape[1] + 0.4),
        squeeze=False,
    )
    for i in range(n):
        observed = np.repeat(((_image(truth[i], image_shape) + 1) / 2)[..., None], 3, -1)
        observed[~mask[i].cpu().numpy().reshape(image_shape)] = (0.85, 0.1, 0.1)
        panels = [_image(truth[i], image_shape), observed]
        panels += [_image(c[i], image_shape) for c in completions.values()]
        for j, (ax, img) in enumerate(zip(axes[i], panels, strict=True)):
            if img.ndim == 3:
                ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
            else:
                ax.imshow(img, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


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
        (drawn with ``cmap``, each panel scaled to the whole grid's range).
    :param row_titles: a label left of each row.
    :param col_titles: a title above each column.
    :returns: ``str(path)``.
    """
    images = torch.as_tensor(images).detach().cpu().float()
    if images.dim() not in (4, 5):
        raise ValueError(f"images must be (R, C, 3, H, W) or (R, C, H, W), got {images.shape}")
    R, C = images.shape[:2]
    lo, hi = float(images.min()), float(images.max())
    fig, axes = plt.subplots(R, C, figsize=(panel * C + 0.6, panel * R + 0.4), squeeze=False)
    for i in range(R):
        for j in range(C):
            ax = axes[i, j]
            if images.dim() == 5:
                ax.imshow(
                    images[i, j].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest"
                )
            else:
                ax.imshow(
                    images[i, j].numpy(), cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest"
                )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0 and col_titles:
                ax.set_title(col_titles[j], fontsize=7)
            if j == 0 and row_titles:
                ax.set_ylabel(row_titles[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
