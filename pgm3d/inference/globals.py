r"""Global latents during inference for new rows: the guide's point estimate.

The completion back ends and ``log_likelihood(global_latents="point")`` condition on
:math:`\hat\theta`, the guide's point estimate of each global latent (a site outside the data
plate): the mean of :math:`q(\theta)` (its mode for a discrete site; the average of 1,000
draws for a distribution with no closed-form mean), taken site by site in guide order, so a
global site whose guide depends on another is evaluated at the other's estimate. The chains
then target :math:`p(z, x_m \mid x_v, \hat\theta)` exactly.
"""

from __future__ import annotations

import pyro.poutine as poutine
import torch
from pyro.poutine.messenger import Messenger

__all__ = ["point", "point_estimate"]


def point(fn) -> torch.Tensor:
    """The point estimate of one distribution: mean, mode if discrete, else a sample mean."""
    try:
        discrete = fn.support.is_discrete
    except NotImplementedError:
        discrete = False
    try:
        return fn.mode if discrete else fn.mean
    except NotImplementedError:
        if discrete:
            raise ValueError(
                f"cannot take a point estimate of a {type(fn).__name__} (no mode)"
            ) from None
        return fn.sample((1000,)).mean(0)


class _AtPoint(Messenger):
    def __init__(self, names):
        super().__init__()
        self.names = set(names)

    def _process_message(self, msg):
        if msg["type"] == "sample" and msg["name"] in self.names and not msg["is_observed"]:
            msg["value"] = point(msg["fn"])
            msg["done"] = True


def point_estimate(bound, x: torch.Tensor, mask=None) -> dict[str, torch.Tensor]:
    """:math:`\\hat\\theta` of every global latent of a bound pair, by site name."""
    names = bound.structure.global_latents
    if not names:
        return {}
    with torch.no_grad(), poutine.block():
        trace = poutine.trace(_AtPoint(names)(bound.guide)).get_trace(x, mask)
    return {n: trace.nodes[n]["value"] for n in names}
