"""The encoders of the autoguides: the filled data and the mask (and any context and global
latents) to features ``h``.

Rows go through an MLP. Given the data's ``shape`` — ``(C, H, W)`` images or ``(C, R, R, R)``
voxel grids — the data and the mask are stacked as channels and read by a convolutional trunk
(3x3 or 3x3x3 convolutions of stride 2 until the grid is at most 4 wide) before the MLP.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pgm3d.models.guides import mlp

__all__ = ["Encoder"]


class Encoder(nn.Module):
    """``h = MLP([trunk(grid), extra])`` or ``MLP([rows, extra])``.

    :param int rows: width of the row input (the data, and the mask if read).
    :param int extra: width of the inputs that bypass the trunk (context, global latents).
    :param hidden: widths of the MLP's hidden layers; the last is the feature width (``()``:
        the features are the inputs themselves).
    :param shape: ``(C, H, W)`` or ``(C, R, R, R)`` of one row, for a convolutional trunk;
        ``rows`` is then ``channels * prod(spatial)``.
    """

    def __init__(self, rows: int, extra: int, hidden=(256, 256), shape=None):
        super().__init__()
        self.shape = None if shape is None else tuple(int(s) for s in shape)
        width = rows
        self.trunk = None
        if self.shape is not None:
            if len(self.shape) not in (3, 4):
                raise ValueError(f"shape must be (C, H, W) or (C, R, R, R), got {self.shape}")
            spatial = self.shape[1:]
            if rows % math.prod(spatial):
                raise ValueError(f"rows of {rows} entries do not hold grids of shape {spatial}")
            conv = nn.Conv2d if len(spatial) == 2 else nn.Conv3d
            channels, layers, size = rows // math.prod(spatial), [], max(spatial)
            out = 32
            while size > 4 and len(layers) < 8:
                layers += [conv(channels, out, 3, stride=2, padding=1), nn.ELU()]
                channels, out, size = out, min(2 * out, 128), (size + 1) // 2
            self.trunk = nn.Sequential(*layers, nn.Flatten())
            self.grid = (rows // math.prod(spatial), *spatial)
            with torch.no_grad():
                width = self.trunk(torch.zeros(1, *self.grid)).shape[-1]
        sizes = [width + extra, *hidden]
        # ELU between and after the layers: the features feed linear heads
        self.mlp = nn.Sequential(mlp(sizes, nn.ELU), nn.ELU()) if hidden else nn.Identity()
        self.features = sizes[-1]

    def forward(self, rows: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        """``rows (..., R)`` and ``extra (..., E)`` (same leading shape) to ``(..., H)``."""
        if self.trunk is not None:
            lead = rows.shape[:-1]
            rows = self.trunk(rows.reshape(-1, *self.grid)).reshape(*lead, -1)
        inputs = rows if extra is None else torch.cat([rows, extra], -1)
        return self.mlp(inputs)
