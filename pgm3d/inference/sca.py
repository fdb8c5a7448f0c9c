r"""Scaled-covariance approximation (SCA, thesis eq. 4.9).

The pattern's precision :math:`I + W_v^\top\Psi_v^{-1}W_v` is approximated by assuming each
coordinate contributes equally to :math:`W^\top\Psi^{-1}W`:

.. math::
    \Sigma_v^{-1} \approx \frac{D_m}{D} I + \frac{D_v}{D} P, \qquad P = I + W^\top\Psi^{-1}W,

with :math:`D_v` observed and :math:`D_m = D - D_v` missing coordinates, and the mean
:math:`m_v = \Sigma_v W_v^\top\Psi_v^{-1}(x_v - \mu_v)` as in the exact case. The
approximation depends on a row only through :math:`D_v`, so rows with equal counts share one
factorisation.
"""

from __future__ import annotations

import torch

from pgm3d.distributions import PrecisionMultivariateNormal
from pgm3d.inference.base import COMPLETION_METHODS, Completion, fill_missing, require
from pgm3d.linalg import cholesky

__all__ = ["sca"]


@COMPLETION_METHODS.register("sca", kind="closed form", unit="closed form")
def sca(model, x, mask) -> Completion:
    """Complete ``x`` with the scaled-covariance approximation."""
    require(model, "sca", "full_precision", "project", "decode")
    P = model.full_precision()
    D, K = x.shape[1], P.shape[0]
    counts, inverse = torch.unique(mask.sum(1), return_inverse=True)
    frac = (counts.to(x.dtype) / D)[:, None, None]
    eye = torch.eye(K, dtype=x.dtype, device=x.device)
    L = cholesky((1 - frac) * eye + frac * P)[inverse]
    loc = torch.cholesky_solve(model.project(x, mask).unsqueeze(-1), L).squeeze(-1)
    z = PrecisionMultivariateNormal(loc, L, validate_args=False)
    return Completion(z=z, x=fill_missing(model, x, mask, loc), mask=mask, method="sca")
