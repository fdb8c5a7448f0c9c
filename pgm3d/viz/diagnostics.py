"""Figures of posterior diagnostics for the report: trace and rank plots of a sampler's chains
and the PSIS k-hat of each method by row.

They show what ArviZ's ``plot_trace`` and ``plot_rank`` show (Vehtari et al. 2021: rank plots
are flat when the chains mix), drawn here with matplotlib's object API because ArviZ 0.x and
1.x plot through different packages and APIs, and both through pyplot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pgm3d.evaluation.readings import KHAT_LIMIT

__all__ = ["khat_strip", "sbc_histograms", "trace_and_rank"]


def trace_and_rank(
    samples, path: str | Path, *, rows: int = 2, dims: int = 2, title: str | None = None
) -> Path:
    """For the first ``rows`` rows and ``dims`` latent dimensions: each chain's trace (left)
    and the histogram of its draws' ranks among all chains' (right; flat when the chains mix).

    :param samples: ``(chain, draw, row, latent)`` draws (a tensor or array).
    """
    from matplotlib.figure import Figure

    s = np.asarray(samples.detach().cpu() if hasattr(samples, "detach") else samples, float)
    if s.ndim == 3:
        s = s[..., None]
    s = s.reshape(*s.shape[:3], -1)
    C, S = s.shape[:2]
    pairs = [(r, d) for r in range(min(rows, s.shape[2])) for d in range(min(dims, s.shape[3]))]
    fig = Figure(figsize=(8, 1.7 * len(pairs) + 0.4), dpi=100)
    axes = fig.subplots(len(pairs), 2, squeeze=False)
    bins = np.linspace(0, C * S, min(20, S) + 1)
    for (r, d), (trace, rank) in zip(pairs, axes, strict=True):
        draws = s[:, :, r, d]
        ranks = draws.reshape(-1).argsort().argsort().reshape(C, S)
        for c in range(C):
            trace.plot(draws[c], lw=0.8, label=f"chain {c + 1}")
            counts, _ = np.histogram(ranks[c], bins=bins)
            rank.step(bins[:-1], counts + c * counts.max() * 1.2, where="post", lw=1)
        trace.set_ylabel(f"row {r + 1}, z{d + 1}", fontsize=8)
        rank.set_yticks([])
        trace.tick_params(labelsize=7)
        rank.tick_params(labelsize=7)
    axes[0, 0].set_title("trace (one line per chain)", fontsize=9)
    axes[0, 1].set_title("rank histograms, one per chain (flat: the chains mix)", fontsize=9)
    axes[-1, 0].set_xlabel("draw", fontsize=8)
    axes[-1, 1].set_xlabel("rank among all draws", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def khat_strip(khat: dict, path: str | Path, *, title: str | None = None) -> Path:
    """Each method's PSIS k-hat by row (a dot per row), with the 0.5 and 0.7 lines; rows whose
    k-hat is ``-inf`` (the proposal is exact there) sit on the bottom edge, marked "exact".

    :param dict khat: method name -> ``(B,)`` k-hat per row.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.4 * max(3, len(khat)) + 1.5, 3.2), dpi=110)
    ax = fig.subplots()
    values = {m: np.asarray(k.detach().cpu() if hasattr(k, "detach") else k, float)
              for m, k in khat.items()}  # fmt: skip
    finite = np.concatenate([v[np.isfinite(v)] for v in values.values()] + [np.array([0.0])])
    low = min(-0.2, finite.min() - 0.1)
    high = max(1.0, finite.max() + 0.1)
    rng = np.random.default_rng(0)
    for i, (_method, v) in enumerate(values.items()):
        shown = np.clip(np.where(np.isneginf(v), low, v), low, high)
        jitter = rng.uniform(-0.18, 0.18, len(v))
        ax.scatter(i + jitter, shown, s=9, alpha=0.7,
                   c=np.where(v > KHAT_LIMIT, "tab:red", "tab:blue"))  # fmt: skip
        exact = int(np.isneginf(v).sum())
        if exact:
            ax.annotate(f"{exact} exact", (i, low), textcoords="offset points", xytext=(0, 4),
                        ha="center", fontsize=7)  # fmt: skip
    ax.axhline(0.5, color="0.6", ls=":", lw=1)
    ax.axhline(KHAT_LIMIT, color="tab:red", ls="--", lw=1, label=f"{KHAT_LIMIT}: unreliable above")
    ax.set_xticks(range(len(values)), list(values), fontsize=8)
    ax.set_ylim(low - 0.05, high)
    ax.set_ylabel("PSIS k-hat")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(title or "PSIS k-hat of each method's posterior as a proposal, by row", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def sbc_histograms(result, path: str | Path, *, title: str | None = None, most: int = 8) -> Path:
    """Simulation-based calibration (Talts et al. 2018): the histogram of the true latent's
    rank among the posterior draws, one panel per latent dimension (the first ``most``), with
    the count a calibrated posterior gives every bin and its 99% band (binomial). Too many low
    and high ranks: the posterior is too narrow; a hump in the middle: too wide; a slope: biased.

    :param result: an :class:`~pgm3d.evaluation.SBCResult`.
    """
    from matplotlib.figure import Figure
    from scipy.stats import binom

    ranks = np.asarray(result.ranks.detach().cpu() if hasattr(result.ranks, "detach")
                       else result.ranks)  # fmt: skip
    ranks = ranks.reshape(ranks.shape[0], -1)
    n, K = ranks.shape
    L = int(ranks.max()) if n else 0
    bins = result.num_bins
    top = max(L + 1, bins)
    edges = np.linspace(0, top, bins + 1)
    p = 1 / bins
    lo, hi = binom.ppf(0.005, n, p), binom.ppf(0.995, n, p)
    shown = min(K, most)
    fig = Figure(figsize=(2.2 * shown + 0.4, 2.6), dpi=110)
    axes = np.atleast_1d(fig.subplots(1, shown, sharey=True))
    pvalues = np.asarray(result.pvalues.detach().cpu() if hasattr(result.pvalues, "detach")
                         else result.pvalues)  # fmt: skip
    for k, ax in enumerate(axes):
        ax.axhspan(lo, hi, color="0.9")
        ax.axhline(n * p, color="0.5", lw=0.8)
        ax.hist(ranks[:, k], bins=edges, histtype="stepfilled", alpha=0.7)
        ax.set_title(f"z{k + 1}: p = {pvalues[k]:.2g}", fontsize=8)
        ax.set_xlabel("rank", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("simulations", fontsize=8)
    fig.suptitle(title or f"SBC rank histograms ({n} simulations; grey: 99% band if calibrated)",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
