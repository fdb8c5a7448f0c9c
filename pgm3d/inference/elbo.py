r"""Evidence lower bounds through Pyro: ``"elbo"`` (Trace_ELBO) and ``"meanfield"``
(TraceMeanField_ELBO, analytic KL where one is registered).

.. math::
    \mathcal{L}_\alpha(x) = \mathbb{E}_{q(z \mid x)}[\log p(x \mid z)]
        - \alpha\, \mathrm{KL}(q(z \mid x)\,\|\,p(z))

(thesis eq. 3.5; :math:`\alpha = 1` is the ELBO of Kingma & Welling 2014).
"""

from __future__ import annotations

import pyro.poutine as poutine
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO

from pgm3d.inference._tracing import LatentScale
from pgm3d.inference.objectives import OBJECTIVES, Objective

__all__ = ["ELBO", "MeanFieldELBO"]


@OBJECTIVES.register("elbo")
class ELBO(Objective):
    """Monte Carlo ELBO with ``num_particles`` vectorised samples (Pyro's ``Trace_ELBO``);
    score-function terms are added for guide sites that cannot be reparameterised."""

    pyro_elbo = Trace_ELBO
    needs_rsample = False

    def loss_and_bound(self, x, mask, scale, alpha):
        P = self.num_particles
        elbo = self.pyro_elbo(
            num_particles=P, vectorize_particles=P > 1, max_plate_nesting=self.nesting(x, mask)
        )

        def wrap(fn):
            return poutine.scale(LatentScale(alpha)(fn), scale=scale)

        loss = elbo.differentiable_loss(wrap(self.pgm3d_model.model), wrap(self._guide), x, mask)
        bound = (-loss.detach() / (scale * x.shape[0])).expand(x.shape[0])
        return loss, bound


@OBJECTIVES.register("meanfield")
class MeanFieldELBO(ELBO):
    """ELBO with the KL term in closed form where torch/Pyro register one (Pyro's
    ``TraceMeanField_ELBO``); lower variance than ``"elbo"`` for Gaussian guides."""

    pyro_elbo = TraceMeanField_ELBO
    needs_rsample = True
