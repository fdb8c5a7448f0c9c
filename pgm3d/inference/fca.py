r"""Full-covariance approximation (FCA, thesis eq. 4.7).

The full-data posterior covariance stands in for the pattern's own:

.. math::
    q(z \mid x_v) = \mathcal{N}\big(\Sigma\, W_v^\top\Psi_v^{-1}(x_v-\mu_v),\ \Sigma\big),
    \qquad \Sigma = (I + W^\top\Psi^{-1}W)^{-1}.

This is what the full-data encoder gives when missing entries are set to their mean, so it
needs one factorisation for all rows; it under-weights the observed evidence when much is
missing (the mean shrinks towards zero).
"""

from __future__ import annotations

import torch

from pgm3d.distributions import PrecisionMultivariateNormal
from pgm3d.inference.base import COMPLETION_METHODS, Completion, fill_missing, require
from pgm3d.linalg import cholesky

__all__ = ["fca"]


@COMPLETION_METHODS.register("fca", kind="closed form", unit="closed form")
def fca(model, x, mask) -> Completion:
    """Complete ``x`` with the full-covariance approximation."""
    require(model, "fca", "full_precision", "project", "decode")
    L = cholesky(model.full_precision())
    loc = torch.cholesky_solve(model.project(x, mask).mT, L).mT
    z = PrecisionMultivariateNormal(loc, L, validate_args=False)
    return Completion(z=z, x=fill_missing(model, x, mask, loc), mask=mask, method="fca")
