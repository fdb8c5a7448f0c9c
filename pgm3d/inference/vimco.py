r"""VIMCO (``"vimco"``, Mnih & Rezende 2016): the importance-weighted bound with leave-one-out
baselines for guide sites that cannot be reparameterised.

With :math:`K \ge 2` guide samples per row, :math:`\log w_k = \log p(x, z_k) - \log q(z_k
\mid x)` and :math:`\hat{\mathcal{L}} = \log \frac1K \sum_k w_k`, the gradient

.. math::
    \nabla \hat{\mathcal{L}} = \sum_k \tilde w_k \nabla \log w_k
        + \sum_k \big[\hat{\mathcal{L}} - \hat{\mathcal{L}}_{-k}\big]\,
          \nabla_\phi \log q(z_k \mid x),
    \qquad \hat{\mathcal{L}}_{-k} = \log \frac1K \Big(\sum_{j \ne k} w_j + \hat w_{-k}\Big),

is unbiased for :math:`\nabla\,\mathbb{E}[\hat{\mathcal{L}}]` (Mnih & Rezende 2016, eqs. 5 and
10): the first sum is IWAE's (pathwise through the reparameterised sites, which carry no score
term), the second is REINFORCE for the sites that cannot be reparameterised, each sample's
learning signal centred by what the bound would be with that sample replaced by the geometric
mean :math:`\hat w_{-k} = \exp \frac{1}{K-1}\sum_{j \ne k} \log w_j` of the others. The
baseline depends only on the other samples, so it adds no bias, and it removes most of the
signal's variance (the test measures by how much against plain REINFORCE,
``baseline=False``: the learning signal :math:`\hat{\mathcal{L}}` for every sample). Rezende
et al. 2016 §A.5 train their mesh model, rendered by a black box, with this estimator.
"""

from __future__ import annotations

import math

import torch

from pgm3d.contract import ContractError
from pgm3d.inference.iwae import _totals, iwae_bound
from pgm3d.inference.objectives import OBJECTIVES, Objective, global_term, with_value
from pgm3d.inference.trace import score_log_q

__all__ = ["VIMCO", "leave_one_out_bounds"]


def leave_one_out_bounds(log_w: torch.Tensor) -> torch.Tensor:
    """:math:`\\hat{\\mathcal{L}}_{-k}` of ``(K, B)`` log-weights: the bound with sample
    :math:`k` replaced by the geometric mean of the others, shape ``(K, B)``."""
    K = log_w.shape[0]
    others = (log_w.sum(0, keepdim=True) - log_w) / (K - 1)  # (K, B): mean of the others
    swapped = log_w.unsqueeze(0).repeat(K, 1, 1)  # (K, K, B): row k is log_w with k swapped
    k = torch.arange(K, device=log_w.device)
    swapped[k, k] = others
    return torch.logsumexp(swapped, 1) - math.log(K)


@OBJECTIVES.register(
    "vimco", bound="IWAE (VIMCO gradients)", particles="importance-weighted", min_particles=2
)
class VIMCO(Objective):
    """Multi-sample REINFORCE with leave-one-out baselines, pathwise gradients for the
    reparameterisable sites; the reported value is the importance-weighted bound.

    :param int num_particles: :math:`K \\ge 2` samples per row (default 5).
    :param bool baseline: False drops the leave-one-out baselines (plain multi-sample
        REINFORCE, for comparison).
    """

    needs_rsample = False

    def __init__(self, model, guide=None, *, num_particles: int = 5, kl_weight: float = 1.0,
                 baseline: bool = True):  # fmt: skip
        super().__init__(model, guide, num_particles=num_particles, kl_weight=kl_weight)
        if self.num_particles < 2:
            raise ValueError(
                f"VIMCO's baselines leave one of K samples out: num_particles must be >= 2, "
                f"got {num_particles}"
            )
        self.baseline = bool(baseline)

    def check_structure(self, structure) -> None:
        bad = [n for n in structure.global_latents if n in structure.not_reparam]
        if bad:
            raise ContractError(
                f"VIMCO's baselines are per row, but global site {bad[0]!r} "
                f"({structure.not_reparam[bad[0]]}) cannot be reparameterised; use 'elbo'"
            )

    def loss_and_bound(self, bound, x, mask, scale, alpha):
        s = bound.structure
        lw = self.particles(bound, x, mask, alpha)
        log_w = lw.total  # (K, B), differentiable through the reparameterised sites
        L = iwae_bound(log_w)
        local = L
        scored = [n for n in s.not_reparam if n not in s.global_latents]
        if scored:
            log_q = score_log_q(lw.guide_trace, s.nesting, tuple(log_w.shape), scored, sites=s)
            signal = L.detach().unsqueeze(0)
            if self.baseline:
                signal = signal - leave_one_out_bounds(log_w.detach())
            local = L + (signal * log_q).sum(0)
        g = global_term(lw)
        surrogate, _ = _totals(local, g, scale)
        value, per_datum = _totals(L, g, scale)
        return with_value(-surrogate, -value), per_datum
