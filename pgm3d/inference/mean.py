r"""Mean imputation: the baseline that ignores the model's structure.

Each missing entry is replaced by the mean :math:`\mu_d` (for FA/PPCA, the training-data
mean). Its latent is what the full-data encoder makes of the imputed vector,
:math:`\mathcal{N}(\Sigma W^\top\Psi^{-1}(\tilde x - \mu), \Sigma)`, which coincides with the
FCA posterior; only the filled-in data differ (FCA decodes that latent, this does not).
"""

from __future__ import annotations

from pgm3d.inference.base import COMPLETION_METHODS, Completion, require
from pgm3d.inference.fca import fca
from pgm3d.missing import fill_where_missing

__all__ = ["mean_imputation"]


@COMPLETION_METHODS.register("mean", kind="closed form", unit="closed form")
def mean_imputation(model, x, mask) -> Completion:
    """Fill missing entries with the model's mean ``mu``."""
    require(model, "mean", "mu")
    filled = fill_where_missing(x, mask, model.mu)
    # the residual of an imputed entry is zero, so FCA on (x, mask) is the full-data encoder
    return Completion(z=fca(model, x, mask).z, x=filled, mask=mask, method="mean")
