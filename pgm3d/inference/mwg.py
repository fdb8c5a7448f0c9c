r"""Metropolis-within-Gibbs completion (Mattei & Frellsen 2018).

Each sweep updates :math:`z` by an independence Metropolis-Hastings step whose proposal is
the guide given the current completion, then redraws the missing entries:

.. math::
    \tilde z \sim q(z \mid x_v, x_m),\quad
    \rho = \frac{p(x_v, x_m \mid \tilde z)\, p(\tilde z)\, q(z \mid x_v, x_m)}
                {p(x_v, x_m \mid z)\, p(z)\, q(\tilde z \mid x_v, x_m)},\quad
    z \leftarrow \tilde z \text{ w.p. } \min(1, \rho),\quad x_m \sim p(x_m \mid z).

Both moves leave :math:`p(z, x_m \mid x_v)` invariant, so the chain targets the exact
conditional whatever the guide; the guide only sets the mixing speed.

One sweep is one guide pass and one model pass on the proposal: the current latents' prior
and likelihood are carried from the sweep that accepted them (the ``"x"`` site re-evaluated at
the new completion, other observed sites carried as they are), which works for Normal and
Bernoulli likelihoods, masked or not; for other families the proposed and current latents are
decoded together in one pass of twice the batch.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch

from pgm3d._validation import fill_where_missing
from pgm3d.inference._tracing import latent_values, log_q_at, log_weights, trace_guide, with_values
from pgm3d.inference.base import COMPLETION_METHODS
from pgm3d.inference.samples import ChainState, chain_method, rows_view

__all__ = ["mwg"]


def _merge(take: torch.Tensor, a, b):
    """Row-wise choice between two likelihoods of one family (``a`` where ``take``).

    ``take`` is already shaped to broadcast against the base distribution's parameters.
    Raises :class:`NotImplementedError` for families without a rule here.
    """
    if type(a) is not type(b):
        raise NotImplementedError
    if isinstance(a, dist.Independent):
        base = _merge(take, a.base_dist, b.base_dist)
        return dist.Independent(base, a.reinterpreted_batch_ndims)
    if isinstance(a, dist.MaskedDistribution):
        # the mask follows the data, not the latents, so both sides share it
        if not (a._mask is b._mask or torch.equal(a._mask, b._mask)):
            raise NotImplementedError
        return dist.MaskedDistribution(_merge(take, a.base_dist, b.base_dist), a._mask)
    if isinstance(a, torch.distributions.Normal):
        loc, scale = torch.where(take, a.loc, b.loc), torch.where(take, a.scale, b.scale)
        return dist.Normal(loc, scale, validate_args=False)
    if isinstance(a, torch.distributions.Bernoulli):
        return dist.Bernoulli(logits=torch.where(take, a.logits, b.logits), validate_args=False)
    raise NotImplementedError


def _select_latents(accept, trace, proposal, current):
    return {
        name: torch.where(rows_view(accept, trace.nodes[name]), value, current[name])
        for name, value in proposal.items()
    }


def _step(state: ChainState, ctx: dict) -> ChainState:
    model, guide, nesting, x = ctx["model"], ctx["guide"], ctx["nesting"], state.x
    trace = trace_guide(guide, x, None, 1, nesting)  # proposal q(z | x_v, x_m)
    proposal = latent_values(trace)
    cache = ctx.setdefault("cache", {})
    if "fn" not in cache and not cache.get("stacked"):
        # first sweep: decode the current latents once; later sweeps carry their likelihood
        current = log_weights(
            model.model, guide, x, None, 1, nesting, guide_trace=with_values(trace, state.latents)
        )
        cache["fn"] = current.model_trace.nodes["x"]["fn"]
        cache["log_prior"] = current.log_prior
        # observed sites other than "x" (e.g. ShapeVAE's existences) do not change with x_m
        cache["log_other"] = current.log_lik - cache["fn"].log_prob(x)
    if cache.get("stacked"):
        return _step_stacked(state, ctx, trace, proposal)
    lw = log_weights(model.model, guide, x, None, 1, nesting, guide_trace=trace)
    log_q_current = log_q_at(trace, nesting, (1, x.shape[0]), values=state.latents)
    log_p_current = cache["fn"].log_prob(x) + cache["log_prior"] + cache["log_other"]
    log_rho = (lw.total - (log_p_current - log_q_current))[0]
    accept = torch.rand_like(log_rho).log() < log_rho
    fn_proposal = lw.model_trace.nodes["x"]["fn"]
    try:
        take = accept.view(1, -1, *([1] * fn_proposal.event_dim))
        fn = _merge(take, fn_proposal, cache["fn"])
    except NotImplementedError:
        cache.clear()
        cache["stacked"] = True
        return _step_stacked(state, ctx, trace, proposal)
    cache["fn"] = fn
    cache["log_prior"] = torch.where(accept, lw.log_prior, cache["log_prior"])
    log_other = lw.log_lik - fn_proposal.log_prob(x)
    cache["log_other"] = torch.where(accept, log_other, cache["log_other"])
    latents = _select_latents(accept, trace, proposal, state.latents)
    x_new = fill_where_missing(ctx["x"], ctx["mask"], fn.sample()[0])
    return ChainState(latents, x_new, fn.mean[0], state.accepted + accept.to(state.accepted.dtype))


def _step_stacked(state: ChainState, ctx: dict, trace, proposal) -> ChainState:
    """The same move for likelihood families :func:`_merge` has no rule for: the proposed and
    current latents are decoded together in one model pass (``P = 2``)."""
    model, nesting = ctx["model"], ctx["nesting"]
    stacked = {n: torch.cat([proposal[n], state.latents[n]], 0) for n in proposal}
    lw = log_weights(
        model.model,
        ctx["guide"],
        state.x,
        None,
        2,
        nesting,
        guide_trace=with_values(trace, stacked),
    )
    log_rho = lw.total[0] - lw.total[1]
    accept = torch.rand_like(log_rho).log() < log_rho
    fn = lw.model_trace.nodes["x"]["fn"]  # p(x | z) at [proposal, current]
    draw, mean = fn.sample(), fn.mean
    rows = accept[:, None]
    x = fill_where_missing(ctx["x"], ctx["mask"], torch.where(rows, draw[0], draw[1]))
    return ChainState(
        _select_latents(accept, trace, proposal, state.latents),
        x,
        torch.where(rows, mean[0], mean[1]),
        state.accepted + accept.to(state.accepted.dtype),
    )


mwg = COMPLETION_METHODS.register("mwg")(
    chain_method(
        "mwg",
        _step,
        "Complete ``x`` by Metropolis-within-Gibbs sampling of :math:`p(z, x_m \\mid x_v)`.",
    )
)
