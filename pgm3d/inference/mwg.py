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
and likelihood are carried from the sweep that accepted them (the observed site that holds the
data re-evaluated at the new completion, other observed sites carried as they are), which
works for Normal and Bernoulli likelihoods, masked or not; for other families the proposed and
current latents are decoded together in one pass of twice the batch. Global latents are held
at the guide's point estimate, so the chain targets :math:`p(z, x_m \mid x_v, \hat\theta)`.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch

from pgm3d.inference.base import COMPLETION_METHODS
from pgm3d.inference.samples import ChainState, chain_method, obs_log_prob, rows_view
from pgm3d.inference.trace import (
    log_q_at,
    log_weights,
    obs_rows,
    row_latents,
    to_trace,
    trace_guide,
    trace_with_rows,
)
from pgm3d.missing import fill_where_missing

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


def _choose(accept: torch.Tensor, proposal: dict, current: dict) -> dict:
    """Row views ``(1, n, ...)``: the proposal where accepted, else the current latents."""
    return {
        name: torch.where(accept.view(1, -1, *([1] * (v.dim() - 2))), v, current[name])
        for name, v in proposal.items()
    }


def _step(state: ChainState, ctx: dict) -> ChainState:
    if ctx.get("stacked"):
        return _step_stacked(state, ctx)
    bound, s, x = ctx["bound"], ctx["structure"], state.x
    n, D = x.shape
    trace = trace_guide(bound.guide, x, None, 1, s.nesting, sites=s)  # proposal q(z | x_v, x_m)
    proposal = row_latents(trace, 1, n, s.nesting, s)
    cache = ctx.setdefault("cache", {})
    if "site" not in cache:
        # first sweep: decode the current latents once; later sweeps carry their likelihood
        current = log_weights(
            bound.model,
            bound.guide,
            x,
            None,
            1,
            s.nesting,
            guide_trace=trace_with_rows(trace, state.latents, s.nesting, s),
            sites=s,
        )
        cache["site"] = current.model_trace.nodes[s.obs]
        cache["log_prior"] = current.log_prior
        # observed sites other than the data's (e.g. ShapeVAE's existences) do not change with
        # the missing entries
        cache["log_other"] = current.log_lik - obs_log_prob(cache["site"], x, s)
    lw = log_weights(bound.model, bound.guide, x, None, 1, s.nesting, guide_trace=trace, sites=s)
    current = {k: to_trace(v, k, s.nesting, s, trace.nodes[k]) for k, v in state.latents.items()}
    log_q_current = log_q_at(trace, s.nesting, (1, n), values=current, sites=s)
    log_p_current = obs_log_prob(cache["site"], x, s) + cache["log_prior"] + cache["log_other"]
    log_rho = (lw.total - (log_p_current - log_q_current))[0]
    accept = torch.rand_like(log_rho).log() < log_rho
    site = lw.model_trace.nodes[s.obs]
    try:
        fn = _merge(rows_view(accept, site, s), site["fn"], cache["site"]["fn"])
    except NotImplementedError:
        # a likelihood family without a row-merge rule: from now on decode the proposed and
        # current latents together (this sweep's proposal is discarded unused)
        ctx["stacked"] = True
        return _step_stacked(state, ctx)
    cache["site"] = {**site, "fn": fn}
    cache["log_prior"] = torch.where(accept, lw.log_prior, cache["log_prior"])
    log_other = lw.log_lik - obs_log_prob(site, x, s)
    cache["log_other"] = torch.where(accept, log_other, cache["log_other"])
    x_new = fill_where_missing(ctx["x"], ctx["mask"], obs_rows(fn.sample(), 1, n, D)[0])
    return ChainState(
        _choose(accept, proposal, state.latents),
        x_new,
        obs_rows(fn.mean, 1, n, D)[0],
        state.accepted + accept.to(state.accepted.dtype),
    )


def _step_stacked(state: ChainState, ctx: dict) -> ChainState:
    """The same move for likelihood families :func:`_merge` has no rule for: one guide pass
    with two particles (the first is the proposal) and one model pass decoding the proposed
    and current latents together (``P = 2``)."""
    bound, s, x = ctx["bound"], ctx["structure"], state.x
    n, D = x.shape
    trace = trace_guide(bound.guide, x, None, 2, s.nesting, sites=s)
    drawn = row_latents(trace, 2, n, s.nesting, s)
    proposal = {k: v[:1] for k, v in drawn.items()}
    stacked = {k: torch.cat([proposal[k], state.latents[k]], 0) for k in drawn}
    lw = log_weights(
        bound.model,
        bound.guide,
        x,
        None,
        2,
        s.nesting,
        guide_trace=trace_with_rows(trace, stacked, s.nesting, s),
        sites=s,
    )
    log_rho = lw.total[0] - lw.total[1]
    accept = torch.rand_like(log_rho).log() < log_rho
    fn = lw.model_trace.nodes[s.obs]["fn"]  # p(x | z) at [proposal, current]
    draw, mean = obs_rows(fn.sample(), 2, n, D), obs_rows(fn.mean, 2, n, D)
    rows = accept[:, None]
    return ChainState(
        _choose(accept, proposal, state.latents),
        fill_where_missing(ctx["x"], ctx["mask"], torch.where(rows, draw[0], draw[1])),
        torch.where(rows, mean[0], mean[1]),
        state.accepted + accept.to(state.accepted.dtype),
    )


mwg = COMPLETION_METHODS.register(
    "mwg", kind="sampler", unit="{chains} chain(s) x ({warmup} warm-up + {num_samples} draws)"
)(
    chain_method(
        "mwg",
        _step,
        "Complete ``x`` by Metropolis-within-Gibbs sampling of :math:`p(z, x_m \\mid x_v)`.",
    )
)
