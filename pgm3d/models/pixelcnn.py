r"""A conditional gated PixelCNN over discrete grey levels: the inversion model of thesis ch. 6.

.. math::
    p(x \mid h) = \prod_{i=1}^{HW} \operatorname{Categorical}\big(x_i;\,
        \operatorname{softmax} f_i(x_{<i}, h)\big),

pixels in raster order, each a categorical over ``levels`` grey levels (thesis §6.5.1: the
images are discrete, so :math:`-\log p(x \mid h)` is a code length and its mean over the data
bounds the conditional entropy :math:`H(x \mid h)` from above).

The network is the gated PixelCNN of van den Oord et al. (2016, "Conditional Image Generation
with PixelCNN Decoders"): a vertical stack that sees the rows above and a horizontal stack that
sees the pixels to the left, so the receptive field has no blind spot; each layer's gate is

.. math:: y = \tanh(W_f * x + V_f h) \odot \sigma(W_g * x + V_g h),

with residual connections and dropout on the horizontal stack (as PixelCNN++, Salimans et al.
2017, and thesis §6.5.1 use). The conditioning :math:`h` enters every gate as biases:

- a vector ``h (B, C)`` through a linear map to per-channel biases (van den Oord et al. eq. 4);
- a spatial ``h (B, C, H', W')`` resized to the image and mapped by ``1 x 1`` convolutions to
  per-pixel biases (their eq. 5, with resizing for the deconvolution, as §6.5.1 does).

Without ``h`` (``cond_shape=None``) it is the unconditional PixelCNN that bounds :math:`H(x)`.

It is a Pyro model without latents whose observed site ``"x"`` takes the pixel levels as rows
``(B, H*W)`` (floats holding integers ``0 .. levels-1``) and the conditioning input as the
context ``h``: :func:`~pgm3d.inference.fit` trains it by maximum likelihood (the ELBO of a model
without latents is its log-likelihood) and :func:`~pgm3d.inference.log_likelihood` returns the
exact :math:`\log p(x \mid h)`. Its pixels are coupled through the autoregression, so masking a
missing pixel's factor is not marginalising it: the model refuses masks.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn
from torch.nn import functional as F

from pgm3d.contract import ContractError
from pgm3d.models.base import Model, check_n

__all__ = ["PixelCNN"]


def _shift_down(x: torch.Tensor) -> torch.Tensor:
    """Row ``i`` gets row ``i - 1`` (zeros in row 0): what the vertical stack hands the
    horizontal one, so a pixel sees only the rows strictly above it through it."""
    return F.pad(x, (0, 0, 1, 0))[..., :-1, :]


def _shift_right(x: torch.Tensor) -> torch.Tensor:
    """Column ``j`` gets column ``j - 1``: the first horizontal layer sees no pixel itself."""
    return F.pad(x, (1, 0, 0, 0))[..., :, :-1]


class _StackConv(nn.Module):
    """The two causal convolutions of one layer, by padding and cropping (no masks needed):
    the vertical one covers rows ``i - k//2 .. i`` and all of ``k`` columns around ``j``; the
    horizontal one covers columns ``j - k//2 .. j`` of row ``i``."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__()
        self.k = k
        self.vertical = nn.Conv2d(c_in, c_out, (k // 2 + 1, k))
        self.horizontal = nn.Conv2d(c_in, c_out, (1, k // 2 + 1))

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.k // 2
        v = self.vertical(F.pad(v, (r, r, r, 0)))
        h = self.horizontal(F.pad(h, (r, 0, 0, 0)))
        return v, h


def _gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class _GatedLayer(nn.Module):
    """One gated layer: both stacks' convolutions, the vertical-to-horizontal link, the
    conditioning biases, and the horizontal stack's residual connection with dropout (the
    first layer: ``c_in`` one-hot levels in, no residual, no dropout)."""

    def __init__(self, channels: int, k: int, cond: str | None, cond_channels: int, dropout: float,
                 residual: bool, c_in: int | None = None):  # fmt: skip
        super().__init__()
        self.conv = _StackConv(channels if c_in is None else c_in, 2 * channels, k)
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)
        self.residual = residual
        self.cond = cond
        if cond == "vector":
            self.bias = nn.Linear(cond_channels, 4 * channels)
        elif cond == "spatial":
            self.bias = nn.Conv2d(cond_channels, 4 * channels, 1)

    def forward(self, v, h, c):
        pv, ph = self.conv(v, h)
        ph = ph + self.link(_shift_down(pv))
        if c is not None:
            b = self.bias(c)
            if self.cond == "vector":
                b = b[:, :, None, None]
            bv, bh = b.chunk(2, dim=1)
            pv, ph = pv + bv, ph + bh
        v = _gate(pv)
        out = self.out(self.dropout(_gate(ph)))
        return v, (h + out if self.residual else out)


class PixelCNN(Model, PyroModule):
    """Gated PixelCNN ``p(x | h)`` over ``levels`` grey levels of ``image_shape`` images.

    ``model(x, mask=None, h=None)`` observes the site ``"x"`` (rows of levels, ``(B, H*W)``)
    in the plate ``"data"``; the guide is empty (no latents).

    :param image_shape: ``(H, W)``.
    :param int levels: grey levels ``L`` (categories per pixel).
    :param cond_shape: ``None`` (unconditional), ``(C,)`` for a vector ``h`` or ``(C, H', W')``
        for a spatial one.
    :param int channels: feature channels of each stack.
    :param int layers: gated layers (the first sees no pixel itself).
    :param int kernel: convolution width (odd).
    :param float dropout: dropout on each residual branch (thesis §6.5.1).
    """

    pgm3d_contract = {"obs": "x", "plate": "data", "data_arg": "x", "context": ("h",)}
    data_kind = "rows"
    completion_methods = ()

    def __init__(
        self, image_shape=(8, 8), levels: int = 17, cond_shape=None, channels: int = 32,
        layers: int = 5, kernel: int = 3, dropout: float = 0.0,
    ):  # fmt: skip
        super().__init__()
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 2 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (H, W) with H, W >= 1, got {image_shape}")
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        if kernel < 3 or kernel % 2 == 0:
            raise ValueError(f"kernel must be odd and >= 3, got {kernel}")
        if layers < 1 or channels < 1:
            raise ValueError(f"layers and channels must be >= 1, got {layers}, {channels}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.image_shape, self.levels = image_shape, levels
        self.data_dim = image_shape[0] * image_shape[1]
        self.cond_shape = None if cond_shape is None else tuple(int(s) for s in cond_shape)
        if self.cond_shape is not None and len(self.cond_shape) not in (1, 3):
            raise ValueError(f"cond_shape must be (C,) or (C, H', W'), got {cond_shape}")
        cond = None if self.cond_shape is None else ("vector" if len(self.cond_shape) == 1
                                                      else "spatial")  # fmt: skip
        self.cond = cond
        c_in = 0 if cond is None else self.cond_shape[0]
        # the input: one-hot levels, centred, so level 0 is not "no signal"
        self.first = _GatedLayer(channels, kernel, cond, c_in, 0.0, residual=False, c_in=levels)
        self.layers = nn.ModuleList(
            _GatedLayer(channels, kernel, cond, c_in, dropout, residual=True)
            for _ in range(layers - 1)
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                  nn.Conv2d(channels, levels, 1))  # fmt: skip

    # ------------------------------------------------------------------ network
    def _one_hot(self, x: torch.Tensor) -> torch.Tensor:
        H, W = self.image_shape
        idx = x.reshape(-1, H, W).long()
        return F.one_hot(idx, self.levels).permute(0, 3, 1, 2).to(x.dtype) - 1.0 / self.levels

    def _condition(self, h: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if self.cond is None:
            if h is not None:
                raise ValueError("this PixelCNN is unconditional (cond_shape=None): pass no h")
            return None
        if h is None:
            raise ContractError(
                "this PixelCNN models p(x | h): pass context={'h': h} (fit, log_likelihood) "
                "or h=... (model, sample)"
            )
        if h.shape[0] != batch or tuple(h.shape[1:]) != self.cond_shape:
            raise ValueError(
                f"h must be ({batch}, {', '.join(map(str, self.cond_shape))}), got {tuple(h.shape)}"
            )
        if self.cond == "spatial":
            h = F.interpolate(h, size=self.image_shape, mode="bilinear", align_corners=False)
        return h

    def logits(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pixel logits ``(B, H*W, L)`` of :math:`p(x_i \\mid x_{<i}, h)` for rows of
        levels ``x (B, H*W)``."""
        return self.network(self._one_hot(x), self._condition(h, x.shape[0]))

    def network(self, one_hot: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """The logits ``(B, H*W, L)`` from centred one-hot images ``(B, L, H, W)`` and the
        conditioning biases' input ``c`` (``None``, ``(B, C)`` or ``(B, C, H, W)``);
        differentiable in ``one_hot``, so its causal structure can be checked."""
        v, hz = self.first(one_hot, _shift_right(one_hot), c)
        for layer in self.layers:
            v, hz = layer(v, hz, c)
        out = self.head(hz)  # (B, L, H, W)
        return out.flatten(2).transpose(1, 2)

    def _check_levels(self, x: torch.Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.data_dim:
            raise ValueError(f"x must be (B, {self.data_dim}) rows of levels, got "
                             f"{tuple(x.shape)}")  # fmt: skip
        bad = (x < 0) | (x > self.levels - 1) | (x != x.round())
        if bool(bad.any()):
            raise ValueError(
                f"x must hold integer levels 0..{self.levels - 1}; got e.g. "
                f"{x[bad][:3].tolist()} (see PixelCNN.to_levels)"
            )

    # ------------------------------------------------------------------ Pyro model
    def model(self, x: torch.Tensor, mask=None, h=None):
        """:math:`p(x \\mid h)`: the observed site ``"x"``, a categorical per pixel."""
        if mask is not None and not bool(mask.all()):
            raise ContractError(
                "a PixelCNN's pixels are coupled through the autoregression: masking a missing "
                "pixel's factor does not marginalise it; pass complete images"
            )
        self._check_levels(x)
        with pyro.plate("data", x.shape[0]):
            px = dist.Categorical(logits=self.logits(x, h)).to_event(1)
            pyro.sample("x", px, obs=x)

    def guide(self, x: torch.Tensor, mask=None, h=None):
        """No latents: the guide is empty."""

    def exact_log_likelihood(self, x, mask=None, existence=None, h=None) -> torch.Tensor:
        """:math:`\\log p(x \\mid h)` per row, nats."""
        self._check_levels(x)
        logp = torch.log_softmax(self.logits(x, h), -1)
        return logp.gather(-1, x.long()[..., None])[..., 0].sum(-1)

    @torch.no_grad()
    def sample(self, n: int = 1, *, h=None, generator=None, mean=False, return_latents=False):
        """``n`` images per row of ``h`` (``(n, B, H*W)`` levels; ``(n, H*W)`` when
        unconditional), pixel by pixel in raster order — ``H*W`` network passes."""
        check_n(n)
        if mean or return_latents:
            raise ValueError("a PixelCNN has no latents and no closed-form mean: sample only")
        B = 1 if h is None else h.shape[0]
        ref = self.head[-1].weight
        hh = None if h is None else h.repeat(n, *([1] * (h.dim() - 1)))  # n copies of B rows
        x = torch.zeros(n * B, self.data_dim, dtype=ref.dtype, device=ref.device)
        for i in range(self.data_dim):
            probs = torch.softmax(self.logits(x, hh)[:, i], -1)
            x[:, i] = torch.multinomial(probs, 1, generator=generator)[:, 0].to(x.dtype)
        return x.reshape(n, B, -1) if h is not None else x

    # ------------------------------------------------------------------ data
    @staticmethod
    def to_levels(x: torch.Tensor, levels: int, low: float = 0.0, high: float = 1.0):
        """Map values in ``[low, high]`` to integer levels ``0 .. levels-1`` (rounding), as
        floats (pgm3d's digits are 17 levels of ``[-1, 1]``: ``to_levels(x, 17, -1, 1)``)."""
        scaled = (torch.as_tensor(x) - low) / (high - low) * (levels - 1)
        return scaled.round().clamp(0, levels - 1)

    @property
    def row_shape(self):
        return (1, *self.image_shape)
