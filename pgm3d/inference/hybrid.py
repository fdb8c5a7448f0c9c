r"""A convex combination of two ELBOs of one model under two guides (Sohn et al. 2015, eq. 8):

.. math::
    \mathcal{L}_{hybrid} = \alpha\, \mathcal{L}(q_1) + (1 - \alpha)\, \mathcal{L}(q_2),

for the CVAE with :math:`q_1` the recognition network (the CVAE bound) and :math:`q_2` the prior
network (the GSNN bound, whose KL term vanishes). Both terms bound the same log-likelihood from
below, so their combination does too.
"""

from __future__ import annotations

import math

from pgm3d.inference.elbo import ELBO
from pgm3d.inference.objectives import Objective

__all__ = ["HybridObjective"]


class HybridObjective(Objective):
    """:math:`\\alpha` times the ELBO under the model's guide plus :math:`1 - \\alpha` times
    the ELBO under ``second_guide``; an objective for :func:`~pgm3d.inference.fit`.

    :param model: the model (with its own guide). :param second_guide: the other guide.
    :param float alpha: weight of the model's own guide's ELBO, in ``[0, 1]``.
    """

    needs_rsample = False

    def __init__(self, model, second_guide, *, alpha: float = 0.5, num_particles: int = 1,
                 kl_weight: float = 1.0):  # fmt: skip
        super().__init__(model, num_particles=num_particles, kl_weight=kl_weight)
        if not (isinstance(alpha, int | float) and math.isfinite(alpha) and 0 <= alpha <= 1):
            raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
        self.alpha = float(alpha)
        self.first = ELBO(model, num_particles=num_particles, kl_weight=kl_weight)
        self.second = ELBO(model, second_guide, num_particles=num_particles, kl_weight=kl_weight)

    def prepare(self, x, mask=None, context=None):
        self.second.prepare(x, mask, context)
        return self.first.prepare(x, mask, context)

    def trainable_parameters(self):
        seen, out = set(), []
        for p in (*self.first.trainable_parameters(), *self.second.trainable_parameters()):
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out

    def forward(self, x, mask=None, *, context=None, scale: float = 1.0, kl_weight=None):
        terms = [(w, t) for w, t in ((self.alpha, self.first), (1 - self.alpha, self.second)) if w]
        loss = sum(
            w * t(x, mask, context=context, scale=scale, kl_weight=kl_weight) for w, t in terms
        )
        self.last_bound = sum(w * t.last_bound for w, t in terms)
        return loss
