r"""Evidence lower bounds through Pyro: ``"elbo"`` (Trace_ELBO), ``"meanfield"``
(TraceMeanField_ELBO, analytic KL where one is registered) and ``"enum"`` (TraceEnum_ELBO,
discrete guide sites summed exactly).

.. math::
    \mathcal{L}_\alpha(x) = \mathbb{E}_{q(z \mid x)}[\log p(x \mid z)]
        - \alpha\, \mathrm{KL}(q(z \mid x)\,\|\,p(z))

(thesis eq. 3.5; :math:`\alpha = 1` is the ELBO of Kingma & Welling 2014). The minibatch scale
multiplies the sites inside the data plate only (:class:`~pgm3d.handlers.LocalScale`), so a
global latent's KL counts once per step, not :math:`N/B` times.
"""

from __future__ import annotations

import warnings

import pyro.distributions as dist
from pyro.infer import Trace_ELBO, TraceEnum_ELBO, TraceMeanField_ELBO

from pgm3d.handlers import LatentScale, LocalScale, SumLogProb
from pgm3d.inference.objectives import OBJECTIVES, Objective

__all__ = ["ELBO", "EnumELBO", "MeanFieldELBO"]


@OBJECTIVES.register("elbo", bound="ELBO", particles="averaged")
class ELBO(Objective):
    """Monte Carlo ELBO with ``num_particles`` samples (Pyro's ``Trace_ELBO``, vectorised
    unless the pair runs its particles as rows); score-function terms are added for guide
    sites that cannot be reparameterised."""

    pyro_elbo = Trace_ELBO
    needs_rsample = False

    def lean(self, structure) -> bool:
        """Take the lean path (:func:`_lean_elbo`): one particle, every guide site
        reparameterised, and Pyro's validation off — with it on, Pyro's ``Trace_ELBO`` runs
        with all its checks (``fit`` keeps it on through the first epoch)."""
        return (type(self) is ELBO and self.num_particles == 1 and not structure.not_reparam
                and not dist.is_validation_enabled())  # fmt: skip

    def loss_and_bound(self, bound, x, mask, scale, alpha):
        s, P = bound.structure, self.num_particles
        if self.lean(s):
            loss = -_lean_elbo(bound, x, mask, scale, alpha)
            return loss, (-loss.detach() / (scale * x.shape[0])).expand(x.shape[0])
        elbo = self.pyro_elbo(
            num_particles=P,
            vectorize_particles=P > 1 and s.layout == "vectorized",
            max_plate_nesting=s.nesting,
        )

        def wrap(fn):
            fn = LatentScale(alpha)(fn) if alpha != 1.0 else fn
            return LocalScale(s.plate, scale)(fn) if scale != 1.0 else fn

        loss = elbo.differentiable_loss(wrap(bound.model), wrap(bound.guide), x, mask)
        value = (-loss.detach() / (scale * x.shape[0])).expand(x.shape[0])
        return loss, value


def _lean_elbo(bound, x, mask, scale: float, alpha: float):
    """The single-particle ELBO of Pyro's ``Trace_ELBO`` for a reparameterised guide, summed
    as the guide and the model run (:class:`~pgm3d.handlers.SumLogProb`) instead of from two
    recorded traces: the same draws, value and gradient (tested to float tolerance), about a
    third less of Pyro's per-step work (``benchmarks/fit_step.py``)."""
    plate = bound.structure.plate
    q = SumLogProb(plate, scale, alpha)
    with q:
        bound.guide(x, mask)
    p = SumLogProb(plate, scale, alpha, replay=q.values)
    with p:
        bound.model(x, mask)
    return p.total - q.total


@OBJECTIVES.register("meanfield", bound="ELBO (analytic KL)", particles="averaged")
class MeanFieldELBO(ELBO):
    """ELBO with the KL term in closed form where torch/Pyro register one (Pyro's
    ``TraceMeanField_ELBO``); lower variance than ``"elbo"`` for Gaussian guides."""

    pyro_elbo = TraceMeanField_ELBO
    needs_rsample = True


@OBJECTIVES.register("enum", bound="ELBO (discrete sites enumerated)", particles="averaged")
class EnumELBO(ELBO):
    """ELBO with every guide site marked ``infer={"enumerate": "parallel"}`` summed over its
    values instead of sampled (Pyro's ``TraceEnum_ELBO``): Kingma et al. 2014's M2 bound for
    unlabelled rows, :math:`\\sum_y q(y \\mid x)(\\mathcal{L}(x, y) - \\log q(y \\mid x))`.
    The sites of :func:`~pgm3d.models.partial.guess_where_unknown` are marked so; a pair
    without enumerated sites gets the plain ELBO (without Pyro's warning that it found none)."""

    pyro_elbo = TraceEnum_ELBO

    def loss_and_bound(self, bound, x, mask, scale, alpha):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "TraceEnum_ELBO found no sample sites")
            return super().loss_and_bound(bound, x, mask, scale, alpha)
