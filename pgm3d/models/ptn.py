r"""Perspective transformer nets (Yan, Yang, Yumer, Guo & Lee 2016, "Perspective transformer
nets: learning single-view 3D object reconstruction without 3D supervision"; seed 004).

An image of a shape goes through an encoder to a 512-unit code and a 3D decoder to an occupancy
grid :math:`\hat V`; training compares the grid's silhouettes, projected by the perspective
transformer (:func:`~pgm3d.models.projection.project`, the maximum of the occupancy along each
camera ray), with the shape's silhouettes from every camera :math:`j`, and/or the grid with the
true volume:

.. math::
    \mathcal{L} = \lambda_{\text{proj}} \frac1n \sum_{j=1}^{n}
        \big\| P(\hat V; \alpha_j) - S_j \big\|_2^2
      + \lambda_{\text{vol}} \big\| \hat V - V \big\|_2^2 ,

PTN-Proj (:math:`\lambda_{\text{vol}} = 0`: no 3D supervision), PTN-Comb (both, 1 each) and
CNN-Vol (:math:`\lambda_{\text{proj}} = 0`). The paper's networks: encoder convolutions of 64,
128 and 256 channels (5 × 5, stride 2) and fully connected layers of 1024, 1024 and 512 units;
decoder a fully connected layer to 3 × 3 × 3 × 512 and 3D transposed convolutions of 256, 96 and
1 channels (kernels 4, 5, 6) to 32³; Adam at :math:`10^{-4}`, all 24 views as supervision for
each shape. ``width`` scales every channel and unit count (1 = the paper's); the images here are
32 × 32 (the paper's 64 × 64), and the encoder is trained with the decoder from the start (the
paper pre-trains it with a recurrent view-transformation network first).

PTN predicts, it does not model a distribution: an ``nn.Module`` and :func:`train_ptn`, not a
Pyro pair.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from pgm3d.models.projection import project

__all__ = ["LOSSES", "PTN", "PTNHistory", "train_ptn"]

#: the paper's three objectives: (lambda_proj, lambda_vol)
LOSSES = {"proj": (1.0, 0.0), "comb": (1.0, 1.0), "vol": (0.0, 1.0)}


def _scaled(n: float, width: float) -> int:
    return max(1, round(n * width))


class PTN(nn.Module):
    """Image ``(B, 32, 32)`` → occupancy ``(B, 32, 32, 32)``.

    :param float width: multiplies every channel and unit count (1 = the paper's).
    :param float occupancy: every voxel's occupancy at initialisation (the output layer's bias
        is its log-odds; ``None``: PyTorch's default initialisation, which starts every voxel
        near 0.5). The paper does not say how it initialised; from 0.5 the squared error of a
        mostly empty grid drives every voxel to 0 at once and the sigmoid saturates there — here
        PTN-Comb and CNN-Vol then predicted empty grids after 40 epochs (chairs: IU 0); from
        0.05 CNN-Vol reached test IU 0.57 in the same run.
    """

    def __init__(self, width: float = 1.0, image_size: int = 32, occupancy: float | None = 0.05):
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        if occupancy is not None and not 0 < occupancy < 1:
            raise ValueError(f"occupancy must be in (0, 1), got {occupancy}")
        if image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8, got {image_size}")
        self.width, self.image_size, self.resolution = width, image_size, 32
        c1, c2, c3 = (_scaled(c, width) for c in (64, 128, 256))
        f1, f2, f3 = (_scaled(f, width) for f in (1024, 1024, 512))
        d0, d1, d2 = (_scaled(c, width) for c in (512, 256, 96))
        s = image_size // 8
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(c1, c2, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(c2, c3, 5, stride=2, padding=2), nn.ReLU(), nn.Flatten(),
            nn.Linear(c3 * s * s, f1), nn.ReLU(), nn.Linear(f1, f2), nn.ReLU(),
            nn.Linear(f2, f3), nn.ReLU(),
        )  # fmt: skip
        self._d0 = d0
        self.decoder_fc = nn.Sequential(nn.Linear(f3, d0 * 27), nn.ReLU())
        # 3 -> 6 -> 15 -> 32 voxels
        self.decoder = nn.Sequential(
            nn.ConvTranspose3d(d0, d1, 4, stride=1), nn.ReLU(),
            nn.ConvTranspose3d(d1, d2, 5, stride=2), nn.ReLU(),
            nn.ConvTranspose3d(d2, 1, 6, stride=2, padding=1),
        )  # fmt: skip
        if occupancy is not None:
            with torch.no_grad():
                self.decoder[-1].bias.fill_(torch.logit(torch.tensor(occupancy)).item())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Occupancy probabilities ``(B, 32, 32, 32)`` (pgm3d's ``[x, y, z]`` layout)."""
        S = self.image_size
        if images.dim() != 3 or images.shape[1:] != (S, S):
            raise ValueError(f"images must be (B, {S}, {S}), got {tuple(images.shape)}")
        h = self.decoder_fc(self.encoder(images.unsqueeze(1)))
        return torch.sigmoid(self.decoder(h.reshape(-1, self._d0, 3, 3, 3))[:, 0])


@dataclass
class PTNHistory:
    """Per-epoch mean loss and the seconds it took."""

    loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def train_ptn(views, loss: str = "comb", *, width: float = 1.0, epochs: int = 20,
              batch_size: int = 6, lr: float = 1e-4, seed: int = 0,
              model: PTN | None = None, samples: int = 32) -> tuple[PTN, PTNHistory]:  # fmt: skip
    """Train a :class:`PTN` on a :class:`~pgm3d.data.views.ViewSet` of silhouettes.

    Each step takes ``batch_size`` shapes, one random view of each as the input, and all of
    each shape's views (and, for ``"comb"``/``"vol"``, its volume) as the target.

    :param loss: ``"proj"``, ``"comb"`` or ``"vol"`` (:data:`LOSSES`).
    :param samples: points along each camera ray of the projection (the paper's sampling grid
        of 32 × 32 × 32: 32 per ray).
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {loss!r}")
    if views.kind != "silhouette":
        raise ValueError(f"PTN trains on silhouettes, got {views.kind} images")
    if views.resolution != 32:
        raise ValueError(f"PTN predicts 32³ grids; the shapes are {views.resolution}³")
    lam_proj, lam_vol = LOSSES[loss]
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = model or PTN(width, views.images.shape[-1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n, V = views.images.shape[:2]
    cameras = views.cameras(0)
    if not bool((views.azimuth == views.azimuth[:1]).all()):
        raise ValueError("train_ptn needs every shape seen from the same cameras")
    volumes = views.shapes.voxels.float()
    history = PTNHistory()
    for _ in range(epochs):
        start, total = time.perf_counter(), 0.0
        for rows in torch.randperm(n, generator=g).split(batch_size):
            pick = torch.randint(V, (len(rows),), generator=g)
            pred = model(views.images[rows, pick])
            value = 0.0
            if lam_proj:
                size = views.images.shape[-1]
                proj = torch.stack([project(pred, c, size, samples=samples) for c in cameras], 1)
                value = value + lam_proj * (proj - views.images[rows]).pow(2).sum((-1, -2)).mean()
            if lam_vol:
                value = value + lam_vol * (pred - volumes[rows]).pow(2).sum((1, 2, 3)).mean()
            opt.zero_grad()
            value.backward()
            opt.step()
            total += float(value.detach()) * len(rows)
        history.loss.append(total / n)
        history.seconds.append(time.perf_counter() - start)
    return model.eval(), history
