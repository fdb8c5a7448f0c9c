r"""Self-normalised importance resampling (``"importance"``) with the guide as proposal.

.. math::
    z_k \sim q(z \mid x_v),\quad \tilde w_k \propto \frac{p(x_v, z_k)}{q(z_k \mid x_v)},\quad
    \mathbb{E}[x_m \mid x_v] \approx \sum_k \tilde w_k\, \mathbb{E}[x_m \mid z_k],

with ``chains * num_samples`` draws resampled from the weighted proposals per row and their
missing entries drawn from :math:`p(x_m \mid z)`. The proposals are drawn in chunks, so memory
follows the chunk rather than ``num_proposals``; the effective sample size
:math:`1 / \sum_k \tilde w_k^2` of each row is reported.
"""

from __future__ import annotations

import pyro
import torch

from pgm3d._progress import progress_bar
from pgm3d.inference.base import COMPLETION_METHODS
from pgm3d.inference.samples import (
    SampleCompletion,
    check_sampler_options,
    decode_latents,
    finish,
    prepare,
)
from pgm3d.inference.trace import log_weights, obs_rows, row_latents
from pgm3d.linalg import StreamingLogSumExp
from pgm3d.missing import fill_where_missing

__all__ = ["importance"]


@COMPLETION_METHODS.register(
    "importance", kind="importance", unit="{num_proposals} proposals, {num_samples} draws"
)
def importance(
    model,
    x,
    mask,
    *,
    context=None,
    num_proposals: int = 1000,
    chains: int = 4,
    num_samples: int = 25,
    chunk_size: int | None = None,
    guide=None,
    seed: int | None = None,
    progress: bool | None = None,
) -> SampleCompletion:
    """Complete ``x`` by importance resampling of guide samples.

    :param context: row-aligned conditioning inputs of the model (never imputed).
    :param int num_proposals: proposals ``K`` per row.
    :param int chains: independent groups of resampled draws (for R-hat-style comparisons).
    :param int num_samples: draws resampled per group.
    :param int chunk_size: proposals drawn at once (default: about 4M data-sized elements).
    :param guide: proposal to use instead of the model's guide.
    :param seed: seeds Pyro's generators first.
    """
    check_sampler_options(num_proposals=num_proposals, chains=chains, num_samples=num_samples)
    bound, s, _ = prepare(model, x, mask, context, guide, "completion method 'importance'")
    if seed is not None:
        pyro.set_rng_seed(seed)
    B, D = x.shape
    chunk = chunk_size or max(1, min(num_proposals, 2**22 // (B * D)))
    zero_filled = fill_where_missing(x, mask, torch.zeros_like(x))
    with torch.no_grad():
        log_w, proposals = [], []
        acc = StreamingLogSumExp()  # for the Rao-Blackwellised mean of E[x | z_k]
        for start in progress_bar(
            range(0, num_proposals, chunk), desc="importance", progress=progress
        ):
            k = min(chunk, num_proposals - start)
            lw = log_weights(bound.model, bound.guide, x, mask, k, s.nesting, sites=s)
            acc.update(lw.total, obs_rows(lw.model_trace.nodes[s.obs]["fn"].mean, k, B, D))
            log_w.append(lw.total)
            proposals.append(row_latents(lw.guide_trace, k, B, s.nesting, s))
        log_w = torch.cat(log_w)  # (K, B)
        latents = {n: torch.cat([p[n] for p in proposals]) for n in proposals[0]}
        w = torch.softmax(log_w, 0)
        ess = 1.0 / w.pow(2).sum(0)
        picks = torch.multinomial(w.T, chains * num_samples, replacement=True)  # (B, C*S)
        chosen = {n: _gather(v, picks) for n, v in latents.items()}  # (C*S, B, ...)
        draws = decode_latents(bound, chosen, zero_filled, s).sample()
        draws = draws.reshape(chains, num_samples, B, D)
    by_chain = {n: v.reshape(chains, num_samples, *v.shape[1:]) for n, v in chosen.items()}
    return finish(x, mask, by_chain, draws, acc.weighted_mean(), "importance", ess=ess)


def _gather(values: torch.Tensor, picks: torch.Tensor) -> torch.Tensor:
    """``values (K, B, ...)`` at per-row indices ``picks (B, M)`` -> ``(M, B, ...)``."""
    B = picks.shape[0]
    rows = torch.arange(B, device=picks.device)
    return values[picks.T, rows]
