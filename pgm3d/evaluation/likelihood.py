"""Test log-likelihood of any model in nats per observed dimension: exact where the model has
a closed form, the importance-weighted bound (Burda et al. 2016) otherwise."""

from __future__ import annotations

import torch

from pgm3d.contract import WrappedModel
from pgm3d.models.base import Model

__all__ = ["log_likelihood_per_dim"]


def log_likelihood_per_dim(
    model,
    x: torch.Tensor,
    mask: torch.Tensor,
    *,
    existence: torch.Tensor | None = None,
    num_samples: int = 1000,
    context=None,
) -> tuple[torch.Tensor, bool]:
    """Per row, ``log p(x_v) / |v|``: the log-likelihood of the observed entries divided by
    their number (thesis §3.5 reports ShapeVAE and ShapeFA this way).

    - a pgm3d model with a closed form (FA, PPCA, ShapeFA — ``log p(e) + log p(x_v | e)``,
      which needs ``existence`` —, the per-pattern Gaussian): its
      :meth:`~pgm3d.models.base.Model.exact_log_likelihood`;
    - any other model/guide pair (VAE, ShapeVAE, a user's wrapped model): the IWAE bound with
      ``num_samples`` samples, a lower bound that tightens as ``num_samples`` grows.

    The denominator is :meth:`~pgm3d.models.base.Model.observed_entries` (shape models'
    existence columns count in the numerator, as ``log p(e)``, not the denominator); for a
    user's model, the observed entries of ``mask``.

    A row with no observed entry is not scored: its value is NaN (average with
    ``nanmean``, and say how many there were).

    :returns: ``(values (N,), exact)``.
    """
    from pgm3d.inference import log_likelihood

    own = model.source if isinstance(model, WrappedModel) else model
    protocol = isinstance(own, Model)
    total = own.exact_log_likelihood(x, mask, existence) if protocol else None
    exact = total is not None
    if not exact:
        with torch.no_grad():
            total = log_likelihood(model, x, mask, context=context, num_samples=num_samples)
    count = own.observed_entries(mask, existence) if protocol else mask.sum(-1)
    values = total.detach() / count.clamp_min(1)
    values = values.masked_fill(count == 0, float("nan"))
    return values.cpu().double(), exact
