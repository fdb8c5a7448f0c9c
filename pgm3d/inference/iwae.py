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

from pgm3d.inference.objectives import OBJECTIVES, Objective, global_term, with_value
from pgm3d.inference.trace import detached_copy, log_q_at, log_weights

__all__ = ["IWAE", "DReG", "iwae_bound"]


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """:math:`\\log \\frac1K \\sum_k w_k` of ``(K, B)`` log-weights, per row: shape ``(B,)``."""
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])


def _totals(local: torch.Tensor, g: torch.Tensor, scale: float):
    """The step's bound ``scale * sum(local) + g`` and its per-datapoint share ``(B,)``."""
    return scale * local.sum() + g, local + g / (scale * local.shape[0])


@OBJECTIVES.register("iwae", bound="IWAE", particles="importance-weighted")
class IWAE(Objective):
    """The importance-weighted bound, differentiated through reparameterised samples; global
    latents (drawn once per step) enter through the ELBO of :math:`\\theta` around the
    per-row bounds given :math:`\\theta`."""

    def loss_and_bound(self, bound, x, mask, scale, alpha):
        lw = self.particles(bound, x, mask, alpha)
        total, per_datum = _totals(iwae_bound(lw.total), global_term(lw), scale)
        return -total, per_datum


@OBJECTIVES.register("dreg", bound="IWAE (DReG gradients)", particles="importance-weighted")
class DReG(Objective):
    r"""IWAE with doubly-reparameterised guide gradients (Tucker, Lawson, Gu & Maddison 2019).

    The guide's gradient :math:`\sum_k \tilde w_k^2\, \partial_z \log w_k\, \partial_\phi z_k`
    drops the score term whose variance makes IWAE's guide gradient vanish in signal as
    :math:`K` grows; the model's gradient is IWAE's. Surrogate (``sg`` = stop-gradient):

    .. math::
        \sum_k \mathrm{sg}(\tilde w_k)\log p(x, \mathrm{sg}\,z_k)
        + \mathrm{sg}(\tilde w_k^2)\big[\log p(x, z_k) - \log p(x, \mathrm{sg}\,z_k)
        - \log q(z_k) + \log q(\mathrm{sg}\,z_k)\big],

    whose bracket carries only the path through :math:`z_k`. Only the local latents are
    stopped: a global :math:`\theta` stays differentiable in both copies, so its own path
    keeps IWAE's weights :math:`\tilde w_k` and its influence on :math:`q(z \mid \theta)` is
    doubly reparameterised like any other parameter of the local guide. Costs a second model
    pass.
    """

    def loss_and_bound(self, bound, x, mask, scale, alpha):
        s, P = bound.structure, self.num_particles
        lw = self.particles(bound, x, mask, alpha)
        lw_sg = log_weights(
            bound.model,
            bound.guide,
            x,
            mask,
            P,
            s.nesting,
            kl_weight=alpha,
            guide_trace=detached_copy(lw.guide_trace, only=s.local_latents),
            sites=s,
        )
        log_q_sg = log_q_at(lw.guide_trace, s.nesting, (P, x.shape[0]), sites=s)
        log_p, log_p_sg = lw.log_lik + lw.log_prior, lw_sg.log_lik + lw_sg.log_prior
        w = torch.softmax(lw.total.detach(), 0)
        path = log_p - log_p_sg - lw.log_q + log_q_sg  # zero in value, gradient through z only
        g = global_term(lw)
        surrogate, _ = _totals((w * log_p_sg + w.pow(2) * path).sum(0), g, scale)
        total, per_datum = _totals(iwae_bound(lw.total.detach()), g.detach(), scale)
        return with_value(-surrogate, -total), per_datum
