r"""Exact missing-data posterior of a linear-Gaussian model (thesis eqs. 4.1–4.2).

.. math::
    p(z \mid x_v) = \mathcal{N}\big(\Sigma_v W_v^\top\Psi_v^{-1}(x_v-\mu_v),\ \Sigma_v\big),
    \qquad \Sigma_v = (I + W_v^\top\Psi_v^{-1}W_v)^{-1}.

A different "encoder" for every pattern of missingness (Williams, Nash & Nazábal 2018); the
model computes all of them in one batched pass (see
:meth:`pgm3d.models.LinearGaussian.precision`).
"""

from __future__ import annotations

from pgm3d.inference.base import COMPLETION_METHODS, Completion, fill_missing, require

__all__ = ["exact"]


@COMPLETION_METHODS.register("exact", needs_exact=True, kind="closed form", unit="closed form")
def exact(model, x, mask) -> Completion:
    """Complete ``x`` with the model's exact posterior ``p(z | x_v)``."""
    require(model, "exact", "exact_posterior", "decode")
    z = model.exact_posterior(x, mask)
    return Completion(z=z, x=fill_missing(model, x, mask, z.mean), mask=mask, method="exact")
