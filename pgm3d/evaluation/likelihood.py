"""Test log-likelihood of any model in nats per observed dimension: exact where the model has
a closed form, the importance-weighted bound (Burda et al. 2016) otherwise."""

from __future__ import annotations

import torch

__all__ = ["log_likelihood_per_dim"]


def log_likelihood_per_dim(
    model,
    x: torch.Tensor,
    mask: torch.Tensor,
    *,
    existence: torch.Tensor | None = None,
    num_samples: int = 1000,
) -> tuple[torch.Tensor, bool]:
    """Per row, ``log p(x_v) / |v|``: the log-likelihood of the observed point entries divided
    by their number (thesis §3.5 reports ShapeVAE and ShapeFA this way).

    - ShapeFA: ``log p(e) + log p(x_v | e)`` exactly (needs ``existence``);
    - models with an exact ``log_likelihood`` method (FA, PPCA, the per-pattern Gaussian): it;
    - Pyro model/guide pairs (VAE, ShapeVAE): the IWAE bound with ``num_samples`` samples, a
      lower bound that tightens as ``num_samples`` grows.

    Shape models' existence columns count in the numerator (``log p(e)``), not the denominator.

    :returns: ``(values (N,), exact)``.
    """
    from pgm3d.inference import log_likelihood

    point_dim = getattr(model, "point_dim", x.shape[-1])
    obs = mask[:, :point_dim]
    if hasattr(model, "log_joint"):
        if existence is None:
            raise ValueError(f"{type(model).__name__} needs the shapes' existence flags")
        total, exact = model.log_joint(x, mask, existence), True
        obs = mask & model.entry_mask(existence.to(x.device))
    elif callable(getattr(model, "log_likelihood", None)):
        total, exact = model.log_likelihood(x, mask), True
    else:
        with torch.no_grad():
            total, exact = log_likelihood(model, x, mask, num_samples=num_samples), False
    count = obs.sum(-1).clamp_min(1)
    return (total.detach() / count).cpu().double(), exact
