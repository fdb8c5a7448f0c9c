r"""Metropolis-within-Gibbs completion (Mattei & Frellsen 2018).

Each sweep updates :math:`z` by an independence Metropolis-Hastings step whose proposal is
the guide given the current completion, then redraws the missing entries:

.. math::
    \tilde z \sim q(z \mid x_v, x_m),\quad
    \rho = \frac{p(x_v, x_m \mid \tilde z)\, p(\tilde z)\, q(z \mid x_v, x_m)}
                {p(x_v, x_m \mid z)\, p(z)\, q(\tilde z \mid x_v, x_m)},\quad
    z \leftarrow \tilde z \text{ w.p. } \min(1, \rho),\quad x_m \sim p(x_m \mid z).

Both moves leave :math:`p(z, x_m \mid x_v)` invariant, so the chain targets the exact
conditional whatever the guide; the guide only sets the mixing speed. One sweep is one guide
pass and one model pass on the proposed and current latents together.
"""

from __future__ import annotations

import torch

from pgm3d._validation import fill_where_missing
from pgm3d.inference._tracing import latent_values, log_weights, trace_guide
from pgm3d.inference.base import COMPLETION_METHODS
from pgm3d.inference.samples import ChainState, SampleCompletion, rows_view, run_chains

__all__ = ["mwg"]


def _stacked(trace, proposal: dict, current: dict):
    """A copy of the guide trace whose latent values are ``[proposal, current]`` (P = 2)."""
    new = trace.copy()
    for name in proposal:
        site = {k: v for k, v in trace.nodes[name].items() if "log_prob" not in k}
        site["value"] = torch.cat([proposal[name], current[name]], 0)
        new.nodes[name] = site
    return new


def _step(state: ChainState, ctx: dict) -> ChainState:
    model, nesting = ctx["model"], ctx["nesting"]
    trace = trace_guide(ctx["guide"], state.x, None, 1, nesting)  # proposal q(z | x_v, x_m)
    proposal = latent_values(trace)
    lw = log_weights(
        model.model,
        ctx["guide"],
        state.x,
        None,
        2,
        nesting,
        guide_trace=_stacked(trace, proposal, state.latents),
    )
    log_rho = lw.total[0] - lw.total[1]
    accept = torch.rand_like(log_rho).log() < log_rho
    latents = {
        name: torch.where(rows_view(accept, trace.nodes[name]), value, state.latents[name])
        for name, value in proposal.items()
    }
    fn = lw.model_trace.nodes["x"]["fn"]  # p(x | z) at [proposal, current]
    draw, mean = fn.sample(), fn.mean
    rows = accept[:, None]
    x = fill_where_missing(ctx["x"], ctx["mask"], torch.where(rows, draw[0], draw[1]))
    return ChainState(
        latents,
        x,
        torch.where(rows, mean[0], mean[1]),
        state.accepted + accept.to(state.accepted.dtype),
    )


@COMPLETION_METHODS.register("mwg")
def mwg(
    model,
    x,
    mask,
    *,
    chains: int = 4,
    warmup: int = 100,
    thin: int = 10,
    num_samples: int = 25,
    guide=None,
    seed: int | None = None,
    progress: bool | None = None,
) -> SampleCompletion:
    """Complete ``x`` by Metropolis-within-Gibbs sampling of :math:`p(z, x_m \\mid x_v)`.

    :param int chains: chains per row, all run as one batch.
    :param int warmup: sweeps discarded first (thesis: 100).
    :param int thin: keep every ``thin``-th sweep after warm-up (thesis: 10).
    :param int num_samples: draws kept per chain (thesis: 25).
    :param guide: proposal to use instead of ``model.guide``.
    :param seed: seeds Pyro's generators first.
    """
    return run_chains(
        model,
        guide,
        x,
        mask,
        _step,
        chains=chains,
        warmup=warmup,
        thin=thin,
        num_samples=num_samples,
        seed=seed,
        progress=progress,
        method="mwg",
    )
