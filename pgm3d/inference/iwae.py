r"""Importance-weighted bounds: ``"iwae"`` (Burda et al. 2016) and ``"dreg"`` (Tucker et al.
2019).

With :math:`K` samples :math:`z_k \sim q(z \mid x)` and
:math:`\log w_k = \log p(x \mid z_k) + \alpha[\log p(z_k) - \log q(z_k \mid x)]`,

.. math::
    \mathcal{L}_K(x) = \log \frac1K \sum_{k=1}^K w_k \;\le\; \log p(x),

computed per data point (log-mean-exp over particles for each row) and summed over rows, the
minibatch scale multiplying the sum outside the logarithm. Pyro's ``RenyiELBO(alpha=0)``
instead applies the scale inside the log-mean-exp and has no differentiable loss (pyro
issue 3104).
"""

from __future__ import annotations

import math

import torch

from pgm3d.inference._tracing import detached_copy, log_q_at, log_weights
from pgm3d.inference.objectives import OBJECTIVES, Objective, with_value

__all__ = ["IWAE", "DReG", "iwae_bound"]


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """:math:`\\log \\frac1K \\sum_k w_k` of ``(K, B)`` log-weights, per row: shape ``(B,)``."""
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])


@OBJECTIVES.register("iwae")
class IWAE(Objective):
    """The importance-weighted bound, differentiated through reparameterised samples."""

    def loss_and_bound(self, x, mask, scale, alpha):
        lw = log_weights(
            self.pgm3d_model.model,
            self._guide,
            x,
            mask,
            self.num_particles,
            self.nesting(x, mask),
            kl_weight=alpha,
        )
        self.check_rsample(lw.guide_trace)
        bound = iwae_bound(lw.total)
        return -scale * bound.sum(), bound


@OBJECTIVES.register("dreg")
class DReG(Objective):
    r"""IWAE with doubly-reparameterised guide gradients (Tucker, Lawson, Gu & Maddison 2019).

    The guide's gradient :math:`\sum_k \tilde w_k^2\, \partial_z \log w_k\, \partial_\phi z_k`
    drops the score term whose variance makes IWAE's guide gradient vanish in signal as
    :math:`K` grows; the model's gradient is IWAE's. Surrogate (``sg`` = stop-gradient):

    .. math::
        \sum_k \mathrm{sg}(\tilde w_k)\log p(x, \mathrm{sg}\,z_k)
        + \mathrm{sg}(\tilde w_k^2)\big[\log p(x, z_k) - \log p(x, \mathrm{sg}\,z_k)
        - \log q(z_k) + \log q(\mathrm{sg}\,z_k)\big],

    whose bracket carries only the path through :math:`z_k`. Costs a second model pass.
    """

    def loss_and_bound(self, x, mask, scale, alpha):
        nesting = self.nesting(x, mask)
        model, P = self.pgm3d_model.model, self.num_particles
        lw = log_weights(model, self._guide, x, mask, P, nesting, kl_weight=alpha)
        self.check_rsample(lw.guide_trace)
        lw_sg = log_weights(
            model,
            self._guide,
            x,
            mask,
            P,
            nesting,
            kl_weight=alpha,
            guide_trace=detached_copy(lw.guide_trace),
        )
        log_q_sg = log_q_at(lw.guide_trace, nesting, (P, x.shape[0]))
        log_p, log_p_sg = lw.log_lik + lw.log_prior, lw_sg.log_lik + lw_sg.log_prior
        total = lw.total
        w = torch.softmax(total.detach(), 0)
        path = log_p - log_p_sg - lw.log_q + log_q_sg  # zero in value, gradient through z only
        surrogate = (w * log_p_sg + w.pow(2) * path).sum(0)
        bound = iwae_bound(total.detach())
        return with_value(-scale * surrogate.sum(), -scale * bound.sum()), bound
