r"""Reweighted wake-sleep (``"rws"``, Bornschein & Bengio 2015; Le et al. 2019), wake-wake form.

With self-normalised weights :math:`\tilde w_k \propto w_k` of :math:`K` guide samples, the
model ascends :math:`\sum_k \tilde w_k \nabla_\theta \log p(x, z_k)` (the IWAE model gradient)
and the guide ascends :math:`\sum_k \tilde w_k \nabla_\phi \log q(z_k \mid x)`, a
self-normalised estimate of :math:`-\nabla_\phi \mathrm{KL}(p(z \mid x)\,\|\,q(z \mid x))`.
Samples are never differentiated, so discrete latents work too.
"""

from __future__ import annotations

import torch

from pgm3d.contract import ContractError
from pgm3d.inference.iwae import _totals, iwae_bound
from pgm3d.inference.objectives import OBJECTIVES, Objective, draw_globals, with_value
from pgm3d.inference.trace import (
    detached_copy,
    log_q_at,
    log_weights,
    trace_guide,
    with_values,
)

__all__ = ["RWS"]


@OBJECTIVES.register("rws", bound="IWAE (wake-sleep updates)", particles="importance-weighted")
class RWS(Objective):
    """Wake-theta and wake-phi updates from one set of guide samples; the reported value is
    the importance-weighted bound.

    Global latents :math:`\\theta` are drawn once per step by reparameterisation and get the
    gradient of :math:`\\alpha[\\log p(\\theta) - \\log q(\\theta)] + \\sum_n
    \\log p(x_n \\mid \\theta)`, with :math:`\\nabla_\\theta \\log p(x_n \\mid \\theta)
    \\approx \\sum_k \\tilde w_{nk} \\nabla_\\theta \\log p(x_n, z_{nk} \\mid \\theta)`
    (Fisher's identity, self-normalised); the local guide sees :math:`\\theta` stopped, so its
    wake-phi update does not move :math:`\\theta`.
    """

    needs_rsample = False

    def check_structure(self, structure) -> None:
        bad = {
            n: structure.not_reparam[n]
            for n in structure.global_latents
            if n in structure.not_reparam
        }
        if bad:
            name, kind = next(iter(bad.items()))
            raise ContractError(
                f"RWS draws each global latent once per step and differentiates through it, "
                f"but global site {name!r} ({kind}) cannot be reparameterised; use 'elbo'"
            )

    def loss_and_bound(self, bound, x, mask, scale, alpha):
        s, P = bound.structure, self.num_particles
        live, log_q_global = draw_globals(bound, x, mask, alpha) if s.global_latents else ({}, 0.0)
        stopped = {n: v.detach() for n, v in live.items()} or None
        guide_trace = detached_copy(
            trace_guide(bound.guide, x, mask, P, s.nesting, alpha, sites=s, fixed=stopped)
        )
        if live:  # the model sees theta live: its path carries the wake-theta gradient
            guide_trace = with_values(guide_trace, live)
        lw = log_weights(
            bound.model,
            bound.guide,
            x,
            mask,
            P,
            s.nesting,
            kl_weight=alpha,
            guide_trace=guide_trace,
            sites=s,
        )
        log_q = log_q_at(guide_trace, s.nesting, (P, x.shape[0]), sites=s)
        log_p = lw.log_lik + lw.log_prior
        total = (log_p - log_q).detach()
        w = torch.softmax(total, 0)
        g = (lw.global_p.mean() if live else 0.0) - log_q_global
        surrogate, _ = _totals((w * (log_p + log_q)).sum(0), torch.as_tensor(g), scale)
        value, per_datum = _totals(iwae_bound(total), torch.as_tensor(g).detach(), scale)
        return with_value(-surrogate, -value), per_datum
