"""How far a shape family is from a linear one.

A family whose shapes are affine functions of the generator's parameters is modelled as well by
a linear-Gaussian model such as ShapeFA (Nash & Williams 2017, ch. 3) as by any deep model.
Rotations (articulation), bends and discrete rearrangements (a count of legs that moves every
leg) are not affine in the parameters: :func:`linear_fit_residual` measures the variance the
best affine function of the parameters leaves unexplained, :func:`pca_residual` the variance
left by a number of principal components, and :func:`family_linearity` both, per style.
"""

from __future__ import annotations

import torch

__all__ = ["family_linearity", "linear_fit_residual", "pca_residual"]


def pca_residual(x: torch.Tensor, dims) -> torch.Tensor:
    """The fraction of the total variance of the rows of ``x`` that the first ``d`` principal
    components leave unexplained, for each ``d`` in ``dims``:
    :math:`\\sum_{i > d} \\sigma_i^2 / \\sum_i \\sigma_i^2` with :math:`\\sigma_i` the singular
    values of the centred rows.

    :param x: ``(N, D)`` float rows, ``N >= 2``. :param dims: int or sequence of ints ``>= 0``.
    :returns: ``(len(dims),)`` in ``[0, 1]``, on ``x``'s device and dtype.
    """
    x = torch.as_tensor(x)
    if x.dim() != 2 or len(x) < 2 or not x.is_floating_point():
        raise ValueError(f"x must be float rows (N >= 2, D), got {tuple(x.shape)} {x.dtype}")
    dims = torch.as_tensor([dims] if isinstance(dims, int) else list(dims), dtype=torch.long)
    if (dims < 0).any():
        raise ValueError(f"dims must be >= 0, got {dims.tolist()}")
    var = torch.linalg.svdvals(x - x.mean(0)) ** 2
    tail = var.flip(0).cumsum(0).flip(0)  # tail[i] = sum_{j >= i} var_j
    tail = torch.cat([tail, tail.new_zeros(1)])
    return tail[dims.clamp(max=len(var)).to(x.device)] / var.sum().clamp_min(1e-300)


def linear_fit_residual(x: torch.Tensor, parameters: torch.Tensor) -> float:
    """The fraction of the variance of the rows ``x (N, D)`` that the best affine function of
    ``parameters (N, J)`` leaves unexplained (:math:`1 - R^2` of least squares, all columns
    together). Zero for a family linear in its parameters, whatever their number.
    """
    x, parameters = torch.as_tensor(x), torch.as_tensor(parameters)
    if parameters.dim() != 2 or len(parameters) != len(x):
        raise ValueError(
            f"parameters must be (N, J) with N = {len(x)}, got {tuple(parameters.shape)}"
        )
    p = parameters.to(x)
    p = p[:, p.std(0) > 0]
    design = torch.cat([p - p.mean(0), torch.ones_like(p[:, :1])], -1)
    centred = x - x.mean(0)
    coef = torch.linalg.lstsq(design, centred).solution
    return float((centred - design @ coef).pow(2).sum() / centred.pow(2).sum().clamp_min(1e-300))


def family_linearity(
    family: str, n: int = 2000, *, seed: int = 0, points_per_part: int = 16, dtype=torch.float64
) -> dict:
    """Measure each style of a registered family on ``n`` shapes of that style alone (points
    and normals, the rows ShapeVAE and ShapeFA model).

    :returns: ``{style: {...}}`` with ``parameters`` (the generator's draws that vary in the
        style, an upper bound on its free parameters), ``nonlinear_residual`` (the variance an
        affine function of those draws leaves unexplained: :func:`linear_fit_residual`),
        ``pca_residual`` (the variance ``parameters`` principal components leave unexplained)
        and ``components_99`` (principal components for 99% of the variance).
    """
    from pgm3d.data.shapes import FAMILIES, shapes

    out = {}
    for style in FAMILIES[family].style_names:
        data = shapes(
            family, n, seed=seed, points_per_part=points_per_part, styles=[style], dtype=dtype
        )
        rows, params = data.flat(), data.parameters
        d = int((params.std(0) > 0).sum())
        residual = pca_residual(rows, range(rows.shape[1] + 1))
        out[style] = {
            "parameters": d,
            "nonlinear_residual": linear_fit_residual(rows, params),
            "pca_residual": float(residual[min(d, len(residual) - 1)]),
            "components_99": int((residual > 1e-2).sum()),
        }
    return out
