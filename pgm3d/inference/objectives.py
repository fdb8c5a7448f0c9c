"""Training objectives as ``torch.nn.Module`` losses, found by name through ``OBJECTIVES``.

Every objective takes a pgm3d model (``model.model(x, mask)``, ``model.guide(x, mask)``), or a
model and a separate guide, and is called as ``loss = objective(x, mask)``; ``loss.backward()``
then gives the estimator's gradients for every parameter of the model and guide, so a user's
own loop (or Lightning) can drive it. The returned value is always ``-scale * sum_n bound_n``,
the negative bound the objective estimates (the ELBO or the importance-weighted bound), even
where the gradient comes from a surrogate (DReG, RWS); ``objective.last_bound`` holds the mean
per-datapoint bound of the last call.
"""

from __future__ import annotations

import math

import torch

from pgm3d._validation import check_inputs
from pgm3d.inference._tracing import plate_nesting
from pgm3d.registry import Registry

__all__ = ["OBJECTIVES", "Objective", "with_value"]

OBJECTIVES: Registry = Registry("objective")


def with_value(surrogate: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A tensor equal to ``value`` whose gradient is that of ``surrogate``."""
    return surrogate + (value - surrogate).detach()


class Objective(torch.nn.Module):
    """Base class of the training objectives.

    :param model: a pgm3d model with ``model`` and ``guide`` methods (a ``PyroModule``).
    :param guide: a guide ``guide(x, mask)`` to use instead of ``model.guide``; if it is a
        module its parameters are trained too.
    :param int num_particles: particles (samples of the guide) per data point, vectorised.
    :param float kl_weight: the KL weight :math:`\\alpha` of thesis eq. 3.5, multiplying
        :math:`\\log p(z) - \\log q(z \\mid x)`; 1 gives the true bound.
    """

    #: does the estimator differentiate through samples of the guide?
    needs_rsample = True

    def __init__(self, model, guide=None, *, num_particles: int = 1, kl_weight: float = 1.0):
        super().__init__()
        if not callable(getattr(model, "model", None)):
            raise ValueError(
                f"{type(model).__name__} has no model(x, mask) method; pass a pgm3d model"
            )
        if isinstance(num_particles, bool) or not isinstance(num_particles, int):
            raise ValueError(f"num_particles must be an int >= 1, got {num_particles!r}")
        if num_particles < 1:
            raise ValueError(f"num_particles must be >= 1, got {num_particles}")
        if kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {kl_weight}")
        self.pgm3d_model = model
        if guide is None:
            if not callable(getattr(model, "guide", None)):
                raise ValueError(f"{type(model).__name__} has no guide; pass guide=...")
            guide = model.guide
        self.guide_module = guide if isinstance(guide, torch.nn.Module) else None
        self._guide = guide
        self.num_particles = num_particles
        self.kl_weight = kl_weight
        self._nesting: int | None = None
        self.last_bound = math.nan

    def nesting(self, x, mask) -> int:
        if self._nesting is None:
            self._nesting = plate_nesting(self.pgm3d_model.model, self._guide, x, mask)
        return self._nesting

    def forward(self, x, mask=None, *, scale: float = 1.0, kl_weight: float | None = None):
        """Loss on a batch.

        :param torch.Tensor x: ``(B, D)`` batch; missing entries may hold anything.
        :param mask: bool ``(B, D)``, True = observed.
        :param float scale: multiplies the summed per-datapoint bounds (``N / B`` for a
            minibatch of a dataset of ``N`` rows), applied outside any log-mean-exp.
        :param kl_weight: overrides ``self.kl_weight`` for this call (KL warm-up).
        """
        check_inputs(self.pgm3d_model, x, mask)
        alpha = self.kl_weight if kl_weight is None else kl_weight
        loss, bound = self.loss_and_bound(x, mask, scale, alpha)
        self.last_bound = float(bound.detach().mean())
        return loss

    def check_rsample(self, guide_trace) -> None:
        """Raise if the estimator needs reparameterised guide samples and a site has none."""
        if not self.needs_rsample:
            return
        for name, site in guide_trace.nodes.items():
            if site["type"] == "sample" and not site["fn"].has_rsample:
                raise ValueError(
                    f"{type(self).__name__} differentiates through guide samples, but site "
                    f"{name!r} ({type(site['fn']).__name__}) cannot be reparameterised; "
                    "use 'rws' or 'elbo'"
                )

    def loss_and_bound(self, x, mask, scale, alpha):  # pragma: no cover - abstract
        """Return ``(loss, per-datapoint bound of shape (B,))``."""
        raise NotImplementedError
