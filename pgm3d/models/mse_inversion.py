r"""The MSE inversion baseline of Dosovitskiy & Brox (2016), thesis eq. 6.12:

.. math:: \mathcal L_{\mathrm{MSE}}(\theta) = \mathbb E_{p(x, h)} \lVert x - f_\theta(h) \rVert^2,

a deterministic decoder from a layer's representation back to the image. A point estimate of an
information-losing map: its reconstructions blur what the layer does not determine, where an
inversion model (:class:`~pgm3d.models.PixelCNN`) samples it (Fig. 6.1's side-by-side).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from pgm3d.models.guides import mlp
from pgm3d.models.keep_best import KeepBest

__all__ = ["MSEInversion", "train_mse_inversion"]


class MSEInversion(nn.Module):
    """:math:`f_\\theta(h)`: an MLP from the flattened representation to the image rows, in
    ``[-1, 1]`` (tanh).

    :param cond_shape: the representation's shape per row (``(C,)`` or ``(C, H', W')``).
    :param int data_dim: pixels per image.
    :param hidden: hidden layer sizes (ReLU).
    """

    def __init__(self, cond_shape, data_dim: int, hidden=(256, 256)):
        super().__init__()
        self.cond_shape = tuple(int(s) for s in cond_shape)
        self.net = mlp([math.prod(self.cond_shape), *hidden, data_dim])

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if tuple(h.shape[1:]) != self.cond_shape:
            raise ValueError(f"h must be (B, {', '.join(map(str, self.cond_shape))}), "
                             f"got {tuple(h.shape)}")  # fmt: skip
        return torch.tanh(self.net(h.flatten(1)))


def train_mse_inversion(
    h, x, *, hidden=(256, 256), epochs: int = 200, batch_size: int = 64, lr: float = 1e-3,
    valid=None, patience: int = 10, seed: int = 0,
) -> MSEInversion:  # fmt: skip
    """Fit :class:`MSEInversion` by Adam on eq. 6.12; with ``valid=(h, x)`` keep the weights of
    the lowest validation error and stop after ``patience`` epochs without improvement."""
    h, x = torch.as_tensor(h), torch.as_tensor(x)
    if h.shape[0] != x.shape[0]:
        raise ValueError(f"h has {h.shape[0]} rows but x has {x.shape[0]}")
    torch.manual_seed(seed)
    net = MSEInversion(h.shape[1:], x.shape[1], hidden).to(x)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    keep = KeepBest(net, patience)
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(x), generator=g).to(x.device)
        for i in range(0, len(x), batch_size):
            rows = order[i : i + batch_size]
            opt.zero_grad()
            F.mse_loss(net(h[rows]), x[rows]).backward()
            opt.step()
        if valid is not None:
            with torch.no_grad():
                if keep.update(float(F.mse_loss(net.eval()(valid[0]), valid[1]))):
                    break
    keep.restore()
    return net.eval()
