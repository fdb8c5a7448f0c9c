r"""Per-pattern mean imputation: the completion of the per-pattern diagonal Gaussian.

The per-pattern Gaussian (thesis §3.5's baseline, :class:`~pgm3d.models.PatternGaussian`)
models each existence pattern :math:`e` with independent coordinates,
:math:`x_d \mid e \sim \mathcal{N}(\mu_{e,d}, \sigma^2_{e,d})`. Its coordinates are
independent given the pattern, so the conditional mean of a missing entry given the observed
ones is the pattern's mean, :math:`\mathbb{E}[x_m \mid x_v, e] = \mu_{e,m}`: this closed form is
exact for the model. It has no latent variable (``z`` is ``None``).
"""

from __future__ import annotations

import torch

from pgm3d.inference.base import COMPLETION_METHODS, Completion, require
from pgm3d.missing import fill_where_missing

__all__ = ["pattern_mean"]


@COMPLETION_METHODS.register("pattern-mean", kind="closed form", unit="closed form")
def pattern_mean(model, x, mask) -> Completion:
    """Fill missing point entries of rows ``(B, D + K)`` (points, then ``K`` existence flags)
    with the mean of each row's existence pattern; observed entries are kept bit for bit."""
    require(model, "pattern-mean", "loc", "point_dim", "existence_distribution")
    flags = x[:, model.point_dim :]
    idx = model.existence_distribution().pattern_index(flags)
    means = torch.cat([model.loc[idx], flags], -1)
    return Completion(
        z=None, x=fill_where_missing(x, mask, means), mask=mask, method="pattern-mean"
    )
