r"""Image classifiers whose layers the inversion models of thesis ch. 6 invert.

§6.5.1 (after Huang et al. 2017): a ReLU network of two convolutional layers with max pooling
(CONV1, CONV2), a fully connected layer (FC3) and a linear layer giving the class logits
(LOGITS); 32 filters per convolution and 256 units for MNIST, dropout at every layer, Adam at
learning rate :math:`3 \cdot 10^{-4}`, early stopping on validation accuracy. Its §6.5.2
compares architectures on affNIST: fully connected (FC1, FC2, FC3, LOGITS), the convolutional
network, and the convolutional network with *global* max pooling after CONV2 (translation
invariant by construction).

:meth:`LayerClassifier.representations` returns any layer's output — the ``h`` an inversion
model :class:`~pgm3d.models.PixelCNN` conditions on (vectors for FC3 and LOGITS, feature maps
for CONV1 and CONV2).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from pgm3d.models.keep_best import KeepBest

__all__ = ["ARCHITECTURES", "LayerClassifier", "train_classifier"]

#: architecture -> its layers, in order
ARCHITECTURES = {
    "conv": ("conv1", "conv2", "fc3", "logits"),
    "conv-pool": ("conv1", "conv2", "fc3", "logits"),
    "fc": ("fc1", "fc2", "fc3", "logits"),
}


class LayerClassifier(nn.Module):
    """A classifier of ``image_shape`` images (rows in ``[-1, 1]``) with named layers.

    :param image_shape: ``(H, W)``; the convolutional architectures need ``H, W`` divisible by 4.
    :param int classes: number of classes.
    :param str arch: ``"conv"`` (CONV1, CONV2 with 2x2 max pooling each, FC3, LOGITS),
        ``"conv-pool"`` (the same with global max pooling after CONV2) or ``"fc"``.
    :param int channels: filters of each convolution (the thesis's 32 for MNIST).
    :param int hidden: units of the fully connected layers (the thesis's 256).
    :param float dropout: dropout on the input of every layer after the first.
    """

    def __init__(self, image_shape=(8, 8), classes: int = 10, arch: str = "conv",
                 channels: int = 32, hidden: int = 256, dropout: float = 0.25):  # fmt: skip
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}, got {arch!r}")
        H, W = (int(s) for s in image_shape)
        if arch != "fc" and (H % 4 or W % 4):
            raise ValueError(f"the convolutional networks need H and W divisible by 4, got {H}x{W}")
        if classes < 2 or channels < 1 or hidden < 1 or not 0 <= dropout < 1:
            raise ValueError("need classes >= 2, channels >= 1, hidden >= 1, 0 <= dropout < 1")
        self.image_shape, self.arch, self.classes = (H, W), arch, classes
        self.layers = ARCHITECTURES[arch]
        self.drop = nn.Dropout(dropout)
        if arch == "fc":
            self.fc1 = nn.Linear(H * W, hidden)
            self.fc2 = nn.Linear(hidden, hidden)
            flat = hidden
        else:
            self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
            flat = channels if arch == "conv-pool" else channels * (H // 4) * (W // 4)
        self.fc3 = nn.Linear(flat, hidden)
        self.logits = nn.Linear(hidden, classes)

    def representations(self, x: torch.Tensor, layers=None) -> dict[str, torch.Tensor]:
        """Each named layer's output for rows ``x (B, H*W)``: ``(B, C, H/2, W/2)`` and
        ``(B, C, H/4, W/4)`` feature maps for CONV1 and CONV2 (after ReLU and pooling),
        ``(B, hidden)`` for FC1–FC3 (after ReLU), ``(B, classes)`` logits.

        :param layers: names to return (default: all of the architecture's).
        """
        want = set(self.layers if layers is None else layers)
        unknown = want - set(self.layers)
        if unknown:
            raise ValueError(f"{self.arch!r} has layers {self.layers}, not {sorted(unknown)}")
        H, W = self.image_shape
        if x.dim() != 2 or x.shape[1] != H * W:
            raise ValueError(f"x must be (B, {H * W}) rows of {H}x{W} images, got {tuple(x.shape)}")
        out = {}
        if self.arch == "fc":
            a = out["fc1"] = F.relu(self.fc1(x))
            a = out["fc2"] = F.relu(self.fc2(self.drop(a)))
        else:
            a = out["conv1"] = F.max_pool2d(F.relu(self.conv1(x.reshape(-1, 1, H, W))), 2)
            a = F.relu(self.conv2(self.drop(a)))
            if self.arch == "conv-pool":
                out["conv2"] = F.max_pool2d(a, 2)
                a = a.amax((-2, -1))  # global max pooling: where a feature is, is gone
            else:
                a = out["conv2"] = F.max_pool2d(a, 2)
            a = a.flatten(1)
        a = out["fc3"] = F.relu(self.fc3(self.drop(a)))
        out["logits"] = self.logits(self.drop(a))
        return {k: v for k, v in out.items() if k in want}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, classes)``."""
        return self.representations(x, ("logits",))["logits"]

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Share of rows classified correctly (in eval mode)."""
        mode = self.training
        self.eval()
        try:
            return float((self(x).argmax(-1) == y).double().mean())
        finally:
            self.train(mode)


def train_classifier(
    x, y, *, valid=None, arch: str = "conv", epochs: int = 100, steps: int | None = None,
    batch_size: int = 64, lr: float = 3e-4, patience: int = 10, seed: int = 0, **net_options,
) -> LayerClassifier:  # fmt: skip
    """Train a :class:`LayerClassifier` by Adam on the cross-entropy (thesis §6.5.1's recipe).

    :param valid: ``(x, y)`` held-out rows: keep the weights of the best validation accuracy
        and stop after ``patience`` epochs without improvement (the thesis's early stopping).
    :param steps: stop after this many optimiser steps instead (for the training-dynamics
        analysis: a network at 0, 100, 1,000, ... steps); 0 returns the initial network.
    :returns: the network in eval mode; ``net.history`` holds ``(epoch, validation accuracy)``.
    """
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
    torch.manual_seed(seed)
    image_shape = net_options.pop("image_shape", None)
    if image_shape is None:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ValueError("give image_shape for non-square images")
        image_shape = (side, side)
    classes = net_options.pop("classes", int(y.max()) + 1)
    net = LayerClassifier(image_shape, classes, arch, **net_options).to(x)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    keep = KeepBest(net, patience, higher_is_better=True)
    taken = 0
    net.history = []
    for epoch in range(epochs):
        if steps is not None and taken >= steps:
            break
        net.train()
        order = torch.randperm(len(x), generator=g).to(x.device)
        for i in range(0, len(x), batch_size):
            if steps is not None and taken >= steps:
                break
            rows = order[i : i + batch_size]
            opt.zero_grad()
            F.cross_entropy(net(x[rows]), y[rows]).backward()
            opt.step()
            taken += 1
        if valid is not None:
            acc = net.accuracy(*valid)
            net.history.append((epoch + 1, acc))
            if keep.update(acc) and steps is None:
                break
    if steps is None:
        keep.restore()
    net.steps = taken
    return net.eval()
