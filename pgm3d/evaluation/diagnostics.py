"""How good is a posterior approximation? Diagnostics that need no ground truth (PSIS k-hat,
active units), one that needs a closed form (KL to the exact posterior), and one that needs
only the ability to simulate (simulation-based calibration)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from torch.distributions import kl_divergence

from pgm3d._validation import check_inputs
from pgm3d.contract import WrappedModel, as_model
from pgm3d.evaluation.arviz import psislw
from pgm3d.evaluation.readings import KHAT_LIMIT, PoorDiagnosticWarning
from pgm3d.inference.globals import point_estimate
from pgm3d.inference.trace import DATA_PLATE, log_weights

__all__ = [
    "ActiveUnits",
    "SBCResult",
    "active_units",
    "guide_from",
    "kl_to_exact",
    "psis_khat",
    "sbc",
]


def _check(model, x, mask):
    check_inputs(model, x, mask)


def _bound(model, x, mask, guide, context):
    """The checked pair bound to its context, global latents at the guide's point estimate
    (as the completion back ends hold them)."""
    pair = as_model(model, guide)
    check_inputs(pair, x, mask)
    ctx = pair.context_of(context, x)
    s = pair.check(x, mask, ctx)
    bound = pair.bind(ctx)
    if s.global_latents:
        bound = bound.with_fixed(point_estimate(bound, x, mask))
    return bound, s


def guide_from(posterior: dist.Distribution, site: str = "z", plate: str = DATA_PLATE) -> Callable:
    """A guide ``guide(x, mask)`` that samples ``site`` from a fixed per-row distribution
    (batch ``(B,)``), so any completion's posterior can be used as an importance proposal."""

    def guide(x, mask=None):
        with pyro.plate(plate, x.shape[0]):
            return pyro.sample(site, posterior)

    return guide


def psis_khat(
    model, x, mask=None, *, context=None, guide=None, num_samples: int = 1000, warn: bool = True
) -> torch.Tensor:
    r"""Pareto-smoothed importance sampling :math:`\hat k` per row (Yao et al. 2018).

    Fits a generalised Pareto distribution to the largest importance ratios
    :math:`p(x_v, z)/q(z \mid x_v)` of ``num_samples`` guide draws (ArviZ's ``psislw``).
    :math:`\hat k < 0.5`: the guide is a good proposal and importance-weighted estimates are
    reliable; :math:`\hat k > 0.7`: the guide's tails are too light and they are not.

    :param bool warn: warn (:class:`~pgm3d.evaluation.readings.PoorDiagnosticWarning`) when
        a row's :math:`\hat k` is above 0.7.
    :returns: ``(B,)`` tensor of :math:`\hat k` on ``x``'s device; ``-inf`` for a row whose
        ratios are all equal (the proposal is that row's exact posterior).
    """
    if num_samples < 10:
        raise ValueError(f"num_samples must be >= 10 for a tail fit, got {num_samples}")
    bound, s = _bound(model, x, mask, guide, context)
    with torch.no_grad():
        lw = log_weights(bound.model, bound.guide, x, mask, num_samples, s.nesting, sites=s)
        lw = lw.total  # (S, B)
    lw = lw.T.double().cpu().numpy()  # (B, S)
    # ratios that are constant to rounding (an exact proposal) have no tail to fit
    exact = np.ptp(lw, axis=1) < 1e-8 * np.maximum(1.0, np.abs(lw).max(axis=1))
    k = np.full(lw.shape[0], -np.inf)
    if not exact.all():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            k[~exact] = np.asarray(psislw(lw[~exact])[1])
    poor = int((k > KHAT_LIMIT).sum())
    if warn and poor:
        warnings.warn(
            f"PSIS k-hat above {KHAT_LIMIT} for {poor} of {len(k)} row(s) (worst {k.max():.3g}): "
            "the guide's tails are too light there, so importance-weighted estimates with it "
            "are unreliable",
            PoorDiagnosticWarning,
            stacklevel=2,
        )
    return torch.as_tensor(k, dtype=x.dtype, device=x.device)


def _as_mvn(d) -> dist.MultivariateNormal:
    base = d.base_dist if isinstance(d, dist.Independent) else d
    if isinstance(base, torch.distributions.MultivariateNormal):
        return base
    if isinstance(base, torch.distributions.LowRankMultivariateNormal):
        return dist.MultivariateNormal(base.loc, covariance_matrix=base.covariance_matrix)
    if isinstance(base, torch.distributions.Normal) and isinstance(d, dist.Independent):
        loc, scale = base.loc, base.scale.expand_as(base.loc)
        return dist.MultivariateNormal(loc, scale_tril=torch.diag_embed(scale))
    raise ValueError(
        f"kl_to_exact needs a Gaussian guide (Normal or MultivariateNormal), got {type(d).__name__}"
    )


def kl_to_exact(
    model, x, mask=None, *, guide=None, site: str = "z", num_samples: int = 2000
) -> torch.Tensor:
    r""":math:`\mathrm{KL}(q(z \mid x_v)\,\|\,p(z \mid x_v))` per row.

    For a linear-Gaussian model (which provides ``exact_posterior``). In closed form for a
    Gaussian guide (diagonal, low-rank or full covariance); for any other guide with a density
    (a normalising flow, say) by Monte Carlo, :math:`\frac1S\sum_s \log q(z_s) - \log
    p(z_s \mid x_v)` with ``num_samples`` draws :math:`z_s \sim q`.

    :param guide: the guide to assess (default ``model.guide``, whose KL is 0 for FA/PPCA); or
        a distribution with batch shape ``(B,)``, e.g. ``complete(...).z``.
    :returns: ``(B,)`` tensor.
    """
    source = model.source if isinstance(model, WrappedModel) else model
    _check(source, x, mask)
    if not hasattr(source, "exact_posterior"):
        raise ValueError(f"kl_to_exact needs exact_posterior; {type(source).__name__} has none")
    if isinstance(guide, torch.distributions.Distribution):
        q = guide
    else:
        q = _guide_site(as_model(model, guide), x, mask, site)
    exact = source.exact_posterior(x, mask)
    try:
        q = _as_mvn(q)
    except ValueError:
        z = q.rsample((num_samples,)) if q.has_rsample else q.sample((num_samples,))
        return (q.log_prob(z) - exact.log_prob(z)).mean(0)
    return kl_divergence(q, exact)


def _guide_site(pair, x, mask, site: str | None, context=None):
    """The guide's distribution at ``site`` (default: its only local latent) on ``x``."""
    ctx = pair.context_of(context, x)
    s = pair.check(x, mask, ctx)
    if site is None:
        if len(s.local_latents) != 1:
            raise ValueError(
                f"the model has local latent sites {list(s.local_latents)}; name one with site="
            )
        site = s.local_latents[0]
    with pyro.poutine.block():
        trace = pyro.poutine.trace(pair.bind(ctx).guide).get_trace(x, mask)
    if site not in trace.nodes:
        raise ValueError(f"the guide has no site {site!r}")
    return trace.nodes[site]["fn"]


@dataclass
class ActiveUnits:
    """Latent activity (Burda et al. 2016).

    :ivar activity: ``(K,)`` :math:`A_u = \\mathrm{Cov}_x(\\mathbb{E}_q[z_u \\mid x])`.
    :ivar active: ``(K,)`` bool, :math:`A_u >` threshold.
    :ivar count: number of active units.
    """

    activity: torch.Tensor
    active: torch.Tensor
    count: int


def active_units(
    model,
    x,
    mask=None,
    *,
    context=None,
    guide=None,
    threshold: float = 0.01,
    site: str | None = None,
) -> ActiveUnits:
    """Units whose posterior mean varies across the data by more than ``threshold``.

    :param site: the local latent site (default: the model's only one).
    """
    pair = as_model(model, guide)
    _check(pair, x, mask)
    if x.shape[0] < 2:
        raise ValueError("active_units needs at least 2 rows")
    with torch.no_grad():
        mean = _guide_site(pair, x, mask, site, context).mean.reshape(x.shape[0], -1)
    activity = mean.var(0)
    active = activity > threshold
    return ActiveUnits(activity, active, int(active.sum()))


@dataclass
class SBCResult:
    """Simulation-based calibration (Talts et al. 2018).

    :ivar ranks: ``(N, K)`` rank of each true latent among ``L`` posterior draws, in ``0..L``.
    :ivar pvalues: ``(K,)`` chi-square p-value of uniform ranks, per latent dimension.
    :ivar pvalue: Bonferroni-combined p-value, ``min(1, K * min(pvalues))``.
    :ivar num_bins: bins of the chi-square test.
    """

    ranks: torch.Tensor
    pvalues: torch.Tensor
    pvalue: float
    num_bins: int

    def uniform(self, level: float = 0.01) -> bool:
        """Whether uniformity is *not* rejected at ``level``."""
        return self.pvalue > level


def sbc(
    model,
    method="exact",
    *,
    num_simulations: int = 500,
    num_posterior_samples: int = 99,
    num_bins: int = 10,
    mask_sampler: Callable | None = None,
    generator: torch.Generator | None = None,
    data_dim: int | None = None,
    **options,
) -> SBCResult:
    r"""Simulation-based calibration of a completion method's posterior over latents.

    Draws :math:`z^\star \sim p(z)`, :math:`x \sim p(x \mid z^\star)` (``model.sample``),
    masks it, takes ``L`` draws of the method's posterior ``z`` and records the rank
    of :math:`z^\star` among them. For a calibrated posterior the ranks are uniform on
    ``0..L`` (Talts et al. 2018); a chi-square test over ``num_bins`` bins checks each latent
    dimension. All simulations form one batch.

    :param method: anything :func:`~pgm3d.inference.complete` accepts.
    :param mask_sampler: ``mask_sampler(shape, generator=)`` (default: all observed).
    :param int data_dim: the width of a row, for a user's model that has not seen data.
    :param options: passed to the completion method.
    """
    from scipy.stats import chisquare

    from pgm3d.inference import complete

    if (num_posterior_samples + 1) % num_bins:
        raise ValueError(
            f"num_posterior_samples + 1 = {num_posterior_samples + 1} must be divisible by "
            f"num_bins = {num_bins}, so every bin covers the same number of ranks"
        )
    if num_simulations < 5 * num_bins:
        raise ValueError(f"num_simulations must be >= 5 * num_bins = {5 * num_bins}")
    pair = as_model(model)
    extra = {} if data_dim is None else {"data_dim": data_dim}
    x, z_true = pair.sample(num_simulations, generator=generator, return_latents=True, **extra)
    mask = (
        torch.ones_like(x, dtype=torch.bool)
        if mask_sampler is None
        else mask_sampler(x.shape, generator=generator).to(x.device)
    )
    with torch.no_grad():
        posterior = complete(model, torch.where(mask, x, torch.nan), mask, method, **options).z
        draws = posterior.sample((num_posterior_samples,))  # (L, N, K)
    ranks = (draws < z_true).sum(0)  # (N, K)
    per_bin = (num_posterior_samples + 1) // num_bins
    counts = torch.stack([torch.bincount(r // per_bin, minlength=num_bins) for r in ranks.T.cpu()])
    pvalues = torch.tensor([chisquare(c.numpy()).pvalue for c in counts], dtype=torch.float64)
    K = pvalues.numel()
    return SBCResult(ranks, pvalues, min(1.0, K * float(pvalues.min())), num_bins)
