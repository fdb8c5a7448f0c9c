"""Training objectives as ``torch.nn.Module`` losses, found by name through ``OBJECTIVES``.

Every objective takes any model the contract accepts (:mod:`pgm3d.contract`: a pgm3d model,
an object with ``model`` and ``guide`` methods, or a ``(model, guide)`` pair of functions), or
a model and a separate guide, and is called as ``loss = objective(x, mask, context=...)``;
``loss.backward()`` then gives the estimator's gradients for every parameter of the model and
guide (:meth:`Objective.trainable_parameters`: module parameters and ``pyro.param`` sites), so
a user's own loop (or Lightning) can drive it.

The returned value is always the negative bound the objective estimates, even where the
gradient comes from a surrogate (DReG, RWS). On a minibatch of ``B`` rows with ``scale``
:math:`= N/B`, local terms (sites in the data plate) are multiplied by the scale and global
terms (sites outside it) count once:

.. math::
    -\\Big(\\alpha[\\log p(\\theta) - \\log q(\\theta)]
        + \\frac{N}{B} \\sum_{n \\in \\text{batch}} \\mathcal{L}_n(\\theta)\\Big),

with the global latents :math:`\\theta` drawn once per step (shared by all particles) for
the importance-weighted objectives. ``objective.last_bound`` holds the mean per-datapoint bound
of the last call, :math:`\\frac1B\\sum_n \\mathcal{L}_n + \\frac{1}{N}\\,\\text{global}`.
"""

from __future__ import annotations

import math

import pyro.poutine as poutine
import torch
from pyro.poutine.util import prune_subsample_sites

from pgm3d._validation import check_inputs
from pgm3d.contract import Bound, ContractError, Structure, as_model
from pgm3d.handlers import LatentScale
from pgm3d.inference.trace import LogWeights, log_weights
from pgm3d.registry import Registry

__all__ = ["OBJECTIVES", "Objective", "with_value"]

OBJECTIVES: Registry = Registry("objective")


def with_value(surrogate: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A tensor equal to ``value`` whose gradient is that of ``surrogate``."""
    return surrogate + (value - surrogate).detach()


def draw_globals(bound: Bound, x, mask, alpha: float):
    """Draw the global latents once for a step (the guide run without particles).

    :returns: ``(values, log_q)``: site name -> value (differentiable), and
        :math:`\\alpha \\log q(\\theta)` summed over the global sites.
    """
    fn = LatentScale(alpha)(bound.guide) if alpha != 1.0 else bound.guide
    trace = prune_subsample_sites(poutine.trace(fn).get_trace(x, mask))
    names = bound.structure.global_latents
    trace.compute_log_prob(site_filter=lambda name, site: name in names)
    log_q = sum(trace.nodes[n]["log_prob_sum"] for n in names)
    return {n: trace.nodes[n]["value"] for n in names}, log_q


def global_term(lw: LogWeights) -> torch.Tensor:
    """:math:`\\alpha[\\log p(\\theta) - \\log q(\\theta)]` of a step whose particles share
    :math:`\\theta` (equal over particles; their mean)."""
    g = lw.global_p - lw.global_q
    return g.mean() if torch.is_tensor(g) and g.dim() else torch.as_tensor(g)


class Objective(torch.nn.Module):
    """Base class of the training objectives.

    :param model: any model :func:`~pgm3d.contract.as_model` accepts.
    :param guide: a guide to use instead of the model's own; if it is a module its
        parameters are trained too.
    :param int num_particles: particles (samples of the guide) per data point.
    :param float kl_weight: the KL weight :math:`\\alpha` of thesis eq. 3.5, multiplying
        :math:`\\log p(z) - \\log q(z \\mid x)`; 1 gives the true bound.
    """

    #: does the estimator differentiate through samples of the guide?
    needs_rsample = True

    def __init__(self, model, guide=None, *, num_particles: int = 1, kl_weight: float = 1.0):
        super().__init__()
        if isinstance(num_particles, bool) or not isinstance(num_particles, int):
            raise ValueError(f"num_particles must be an int >= 1, got {num_particles!r}")
        if num_particles < 1:
            raise ValueError(f"num_particles must be >= 1, got {num_particles}")
        if not (isinstance(kl_weight, int | float) and math.isfinite(kl_weight)) or kl_weight < 0:
            raise ValueError(f"kl_weight must be a finite number >= 0, got {kl_weight!r}")
        self.pair = as_model(model, guide)
        self.num_particles = num_particles
        self.kl_weight = kl_weight
        self.last_bound = math.nan

    @property
    def pgm3d_model(self):
        """The model being trained (the object given, unwrapped)."""
        return self.pair.source if self.pair.source is not None else self.pair

    def prepare(self, x, mask=None, context=None) -> Structure:
        """Trace the pair once (see :meth:`~pgm3d.contract.WrappedModel.structure`) and check
        it against this objective's needs; returns its structure."""
        structure = self.pair.check(x, mask, self.pair.context_of(context, x))
        self.check_structure(structure)
        return structure

    def nesting(self, x, mask=None, context=None) -> int:
        """The plate nesting of the pair (traced on the first call)."""
        return self.prepare(x, mask, context).nesting

    def trainable_parameters(self) -> list[torch.Tensor]:
        """Every parameter the pair uses: its modules' and its ``pyro.param`` sites' (call
        :meth:`prepare` or the objective once first, so the sites are known)."""
        return self.pair.trainable_parameters()

    def check_structure(self, structure: Structure) -> None:
        """Raise if the estimator needs reparameterised guide samples and a site has none."""
        if self.needs_rsample and structure.not_reparam:
            name, kind = next(iter(structure.not_reparam.items()))
            raise ContractError(
                f"{type(self).__name__} differentiates through guide samples, but site "
                f"{name!r} ({kind}) cannot be reparameterised; use 'rws' or 'elbo'"
            )

    def forward(
        self, x, mask=None, *, context=None, scale: float = 1.0, kl_weight: float | None = None
    ):
        """Loss on a batch.

        :param torch.Tensor x: ``(B, D)`` batch; missing entries may hold anything.
        :param mask: bool ``(B, D)``, True = observed.
        :param context: row-aligned conditioning inputs (a tensor or a dict of tensors).
        :param float scale: multiplies the local (per-datapoint) terms (``N / B`` for a
            minibatch of a dataset of ``N`` rows), outside any log-mean-exp.
        :param kl_weight: overrides ``self.kl_weight`` for this call (KL warm-up).
        """
        check_inputs(self.pair, x, mask)
        ctx = self.pair.context_of(context, x)
        structure = self.pair.check(x, mask, ctx)
        self.check_structure(structure)
        alpha = self.kl_weight if kl_weight is None else kl_weight
        loss, bound = self.loss_and_bound(self.pair.bind(ctx), x, mask, scale, alpha)
        self.last_bound = float(bound.detach().mean())
        return loss

    def particles(self, bound: Bound, x, mask, alpha: float, **kwargs) -> LogWeights:
        """Log-weights of ``num_particles`` guide draws per row, the global latents drawn once
        and shared by every particle."""
        s = bound.structure
        fixed = None
        if s.global_latents and s.layout == "vectorized":
            fixed, _ = draw_globals(bound, x, mask, alpha)
        return log_weights(
            bound.model,
            bound.guide,
            x,
            mask,
            self.num_particles,
            s.nesting,
            kl_weight=alpha,
            sites=s,
            fixed=fixed,
            **kwargs,
        )

    def loss_and_bound(self, bound: Bound, x, mask, scale, alpha):  # pragma: no cover
        """Return ``(loss, per-datapoint bound of shape (B,))``."""
        raise NotImplementedError
