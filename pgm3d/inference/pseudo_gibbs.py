r"""Pseudo-Gibbs completion (Rezende, Mohamed & Wierstra 2014), as ShapeVAE used it.

Alternate

.. math:: z \sim q(z \mid x_v, x_m), \qquad x_m \sim p(x_m \mid z),

starting from :math:`z \sim q(z \mid x_v)`. With the exact posterior as :math:`q` this is the
Gibbs sampler of :math:`p(z, x_m \mid x_v)`; with an approximate encoder its stationary
distribution is not the posterior, and the bias is measured (not corrected) here —
``"mwg"`` adds the Metropolis correction.
"""

from __future__ import annotations

from pgm3d.inference.base import COMPLETION_METHODS
from pgm3d.inference.samples import ChainState, chain_method, decode_latents
from pgm3d.inference.trace import row_latents, trace_guide
from pgm3d.missing import fill_where_missing

__all__ = ["pseudo_gibbs"]


def _step(state: ChainState, ctx: dict) -> ChainState:
    bound, s, n = ctx["bound"], ctx["structure"], state.x.shape[0]
    trace = trace_guide(bound.guide, state.x, None, 1, s.nesting, sites=s)  # z ~ q(z | x)
    latents = row_latents(trace, 1, n, s.nesting, s)
    decoded = decode_latents(bound, latents, state.x, s)  # x_m ~ p(x_m | z)
    x = fill_where_missing(ctx["x"], ctx["mask"], decoded.sample()[0])
    return ChainState(latents, x, decoded.mean[0], state.accepted)


pseudo_gibbs = COMPLETION_METHODS.register(
    "pseudo_gibbs",
    kind="sampler",
    unit="{chains} chain(s) x ({warmup} warm-up + {num_samples} draws)",
)(
    chain_method(
        "pseudo_gibbs", _step, "Complete ``x`` by pseudo-Gibbs sampling (no Metropolis correction)."
    )
)
