r"""Spatial transformers for images and volumes (Jaderberg et al. 2015; the volumetric form of
Rezende et al. 2016, §A.3): differentiable reading from and writing to a canvas.

An affine map :math:`A` (``theta``, ``(B, n, n + 1)`` for ``n`` = 2 or 3 spatial dimensions)
sends each output location :math:`u`, in normalised coordinates :math:`[-1, 1]^n`, to the input
location :math:`A [u; 1]`, where the input is read by bilinear (trilinear) interpolation, zero
outside:

.. math::
    \mathrm{ST}(x, A)_u = \sum_v x_v \prod_{i=1}^{n} \max\big(0, 1 - |p_i(u) - v_i|\big),
    \qquad p(u) = \text{the voxel position of } A [u; 1].

Rows of ``theta`` follow PyTorch's :func:`torch.nn.functional.affine_grid`: the first row is the
last (width, ``W``) axis, then ``H``, then ``D``. Any ``theta`` goes through ``affine_grid`` /
``grid_sample`` (``align_corners=False``: voxel centres at :math:`(2i + 1)/R - 1`). When
:math:`A` is axis-aligned (a scale and a shift per axis), the interpolation weights factor over
the axes and the transform is the separable-kernel form of §A.3,

.. math::
    \mathrm{VST}(x, h) = [\kappa_d(h) \otimes \kappa_h(h) \otimes \kappa_w(h)] * x,

one ``(out, in)`` matrix of hat-function weights per axis applied in turn
(:func:`separable_transform`): the same numbers as the grid form (tested to 1e-12), at the cost
of three small matrix products instead of a gather per output voxel.

Writing a ``patch`` into a canvas (:func:`write`) reads the patch through the inverse map, so a
patch read from a canvas at ``theta`` is written back where it came from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AffineHead",
    "axis_aligned_theta",
    "invert_theta",
    "orthographic_silhouette",
    "read",
    "separable_transform",
    "spatial_transform",
    "write",
]


def _spatial_dims(x: torch.Tensor, theta: torch.Tensor) -> int:
    n = x.dim() - 2
    if n not in (2, 3):
        raise ValueError(f"x must be (B, C, H, W) or (B, C, D, H, W), got shape {tuple(x.shape)}")
    if theta.shape != (x.shape[0], n, n + 1):
        raise ValueError(
            f"theta must be ({x.shape[0]}, {n}, {n + 1}) for x of shape {tuple(x.shape)}, "
            f"got {tuple(theta.shape)}"
        )
    return n


def _size(size, n: int) -> tuple[int, ...]:
    size = (size,) * n if isinstance(size, int) else tuple(size)
    if len(size) != n or min(size) < 1:
        raise ValueError(f"size must be a positive int or {n} positive ints, got {size}")
    return size


def spatial_transform(x: torch.Tensor, theta: torch.Tensor, size) -> torch.Tensor:
    """Read ``x`` at the output grid mapped by ``theta`` (any affine map).

    :param x: ``(B, C, H, W)`` images or ``(B, C, D, H, W)`` volumes.
    :param theta: ``(B, n, n + 1)`` affine maps, output to input, normalised coordinates.
    :param size: output spatial size, an int (every axis) or ``n`` ints.
    :returns: ``(B, C, *size)``.
    """
    n = _spatial_dims(x, theta)
    size = _size(size, n)
    grid = F.affine_grid(theta.to(x), [x.shape[0], x.shape[1], *size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def axis_aligned_theta(scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``theta`` of the map :math:`u_i \\mapsto s_i u_i + t_i` per axis.

    :param scale, shift: ``(B, n)``, in ``theta``'s axis order (width first).
    :returns: ``(B, n, n + 1)``.
    """
    if scale.shape != shift.shape or scale.dim() != 2 or scale.shape[1] not in (2, 3):
        raise ValueError(
            f"scale and shift must both be (B, 2) or (B, 3), got {tuple(scale.shape)} and "
            f"{tuple(shift.shape)}"
        )
    return torch.cat([torch.diag_embed(scale), shift.unsqueeze(-1)], -1)


def invert_theta(theta: torch.Tensor) -> torch.Tensor:
    """The inverse affine map: ``(B, n, n + 1)``."""
    A, t = theta[..., :-1], theta[..., -1:]
    A_inv = torch.linalg.inv(A)
    return torch.cat([A_inv, -A_inv @ t], -1)


def _kernel(scale, shift, n_out: int, n_in: int) -> torch.Tensor:
    """``(B, n_out, n_in)`` hat-function weights of one axis."""
    u = (2 * torch.arange(n_out, dtype=scale.dtype, device=scale.device) + 1) / n_out - 1
    v = scale[:, None] * u + shift[:, None]  # (B, n_out) normalised input coordinates
    p = ((v + 1) * n_in - 1) / 2  # voxel positions
    j = torch.arange(n_in, dtype=scale.dtype, device=scale.device)
    return (1 - (p[..., None] - j).abs()).clamp_min(0)


def separable_transform(
    x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, size
) -> torch.Tensor:
    """:func:`spatial_transform` of an axis-aligned map by its separable kernels (§A.3).

    :param x: ``(B, C, H, W)`` or ``(B, C, D, H, W)``.
    :param scale, shift: ``(B, n)`` in ``theta``'s axis order (width first).
    :param size: output spatial size.
    """
    n = _spatial_dims(x, axis_aligned_theta(scale, shift))
    size = _size(size, n)
    # theta's rows run W, H, D; x's axes run (D,) H, W
    kernels = [_kernel(scale[:, i].to(x), shift[:, i].to(x), size[-1 - i], x.shape[-1 - i])
               for i in range(n)]  # fmt: skip
    if n == 2:
        kw, kh = kernels
        return torch.einsum("bhy,bwx,bcyx->bchw", kh, kw, x)
    kw, kh, kd = kernels
    return torch.einsum("bdz,bhy,bwx,bczyx->bcdhw", kd, kh, kw, x)


def read(x: torch.Tensor, theta: torch.Tensor, size) -> torch.Tensor:
    """A glimpse of ``size`` from ``x`` at ``theta`` (an alias of :func:`spatial_transform`,
    named as Rezende et al.'s read operation)."""
    return spatial_transform(x, theta, size)


def write(patch: torch.Tensor, theta: torch.Tensor, size) -> torch.Tensor:
    """A canvas of ``size`` holding ``patch`` where :func:`read` at ``theta`` would find it:
    the patch read through the inverse map, zero elsewhere.

    :param patch: ``(B, C, *patch_size)``.
    :returns: ``(B, C, *size)``.
    """
    return spatial_transform(patch, invert_theta(theta), size)


def orthographic_silhouette(volumes: torch.Tensor, azimuth: torch.Tensor) -> torch.Tensor:
    """Silhouettes of occupancy grids seen from the front after a turn about the up axis.

    The grids (pgm3d's ``[x, y, z]`` indexing, ``y`` up) are turned by ``azimuth`` about ``y``
    through a spatial transformer and projected along ``z`` by the largest occupancy on each
    ray (an orthographic camera with full absorption).

    :param volumes: ``(N, R, R, R)`` occupancies in [0, 1].
    :param azimuth: ``(N,)`` angles in radians.
    :returns: ``(N, R, R)`` images, row 0 at the top (largest ``y``), column 0 at ``x = -1``.
    """
    if volumes.dim() != 4 or azimuth.shape != volumes.shape[:1]:
        raise ValueError(
            f"volumes must be (N, R, R, R) and azimuth (N,), got {tuple(volumes.shape)} and "
            f"{tuple(azimuth.shape)}"
        )
    v = volumes.unsqueeze(1).to(torch.get_default_dtype() if not volumes.is_floating_point()
                                else volumes.dtype)  # fmt: skip
    c, s = azimuth.to(v).cos(), azimuth.to(v).sin()
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    # theta's rows run (w, h, d) = (z, y, x): the output point (x, y, z) reads the input at
    # the point turned by the azimuth about y
    rows = ((c, zero, s, zero), (zero, one, zero, zero), (-s, zero, c, zero))
    theta = torch.stack([torch.stack(row, -1) for row in rows], -2)
    turned = spatial_transform(v, theta, v.shape[-3:])[:, 0]  # (N, X, Y, Z)
    return turned.amax(-1).transpose(1, 2).flip(1)  # (N, Y, X), y up


class AffineHead(nn.Module):
    """Affine maps from a feature vector: a linear layer to an axis-aligned map (a scale in
    ``(0, max_scale)`` through a sigmoid and a shift in ``(-1, 1)`` through a tanh, per axis) or,
    with ``full=True``, to a general map initialised at the identity.

    :param int features: input size.
    :param int dims: 2 (images) or 3 (volumes).
    :param float init_scale: the scale at initialisation (the glimpse's share of each axis).
    :param float max_scale: the largest scale.
    """

    def __init__(self, features: int, dims: int = 3, *, full: bool = False,
                 init_scale: float = 1.0, max_scale: float = 2.0):  # fmt: skip
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims}")
        if not 0 < init_scale < max_scale:
            raise ValueError(f"init_scale must be in (0, max_scale={max_scale}), got {init_scale}")
        self.dims, self.full, self.max_scale = dims, full, max_scale
        out = dims * (dims + 1) if full else 2 * dims
        self.linear = nn.Linear(features, out)
        nn.init.zeros_(self.linear.weight)
        with torch.no_grad():
            if full:
                eye = torch.cat([init_scale * torch.eye(dims), torch.zeros(dims, 1)], -1)
                self.linear.bias.copy_(eye.reshape(-1))
            else:
                p = init_scale / max_scale
                self.linear.bias.copy_(
                    torch.cat([torch.full((dims,), p).logit(), torch.zeros(dims)])
                )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``(B, n, n + 1)`` maps for features ``h`` of shape ``(B, features)``."""
        out = self.linear(h)
        if self.full:
            return out.reshape(-1, self.dims, self.dims + 1)
        scale, shift = out.chunk(2, -1)
        return axis_aligned_theta(self.max_scale * torch.sigmoid(scale), torch.tanh(shift))
