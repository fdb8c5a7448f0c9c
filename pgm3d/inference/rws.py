r"""Reweighted wake-sleep (``"rws"``, Bornschein & Bengio 2015; Le et al. 2019), wake-wake form.

With self-normalised weights :math:`\tilde w_k \propto w_k` of :math:`K` guide samples, the
model ascends :math:`\sum_k \tilde w_k \nabla_\theta \log p(x, z_k)` (the IWAE model gradient)
and the guide ascends :math:`\sum_k \tilde w_k \nabla_\phi \log q(z_k \mid x)`, a
self-normalised estimate of :math:`-\nabla_\phi \mathrm{KL}(p(z \mid x)\,\|\,q(z \mid x))`.
Samples are never differentiated, so discrete latents work too.
"""

from __future__ import annotations

import torch

from pgm3d.inference._tracing import detached_copy, log_q_at, log_weights, trace_guide
from pgm3d.inference.iwae import iwae_bound
from pgm3d.inference.objectives import OBJECTIVES, Objective, with_value

__all__ = ["RWS"]


@OBJECTIVES.register("rws")
class RWS(Objective):
    """Wake-theta and wake-phi updates from one set of guide samples; the reported value is
    the importance-weighted bound."""

    needs_rsample = False

    def loss_and_bound(self, x, mask, scale, alpha):
        nesting, P = self.nesting(x, mask), self.num_particles
        guide_trace = detached_copy(trace_guide(self._guide, x, mask, P, nesting, alpha))
        lw = log_weights(
            self.pgm3d_model.model,
            self._guide,
            x,
            mask,
            P,
            nesting,
            kl_weight=alpha,
            guide_trace=guide_trace,
        )
        log_q = log_q_at(guide_trace, nesting, (P, x.shape[0]))
        log_p = lw.log_lik + lw.log_prior
        total = (log_p - log_q).detach()
        w = torch.softmax(total, 0)
        surrogate = (w * (log_p + log_q)).sum(0)
        bound = iwae_bound(total)
        return with_value(-scale * surrogate.sum(), -scale * bound.sum()), bound
