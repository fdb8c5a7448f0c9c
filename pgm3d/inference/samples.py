"""Sample-based completion: the result type and the machinery its back ends share.

All chains and rows advance together: ``C`` chains of ``B`` rows are one batch of ``C * B``
rows for the model and guide, so one sweep of every chain costs one batched pass. The back ends
work on any model/guide pair the contract reads (:mod:`pgm3d.contract`) whose observed site
holds the data: they hold the local latents as row views ``(P, B, *event)`` and write the
completed entries into the observed site; global latents are held at the guide's point
estimate (:mod:`pgm3d.inference.globals`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from pyro.distributions.util import scale_and_mask
from pyro.poutine.util import prune_subsample_sites
from torch.distributions import Distribution

from pgm3d.contract import PARTICLES, PGM3D, Bound, ContractError, Structure, as_model
from pgm3d.inference.base import Completion
from pgm3d.inference.globals import point_estimate
from pgm3d.inference.trace import (
    _per_datum,
    obs_rows,
    row_latents,
    tile,
    to_trace,
    trace_guide,
)
from pgm3d.missing import fill_where_missing

__all__ = [
    "SampleCompletion",
    "check_sampler_options",
    "decode_latents",
    "finish",
    "pointwise_log_likelihood",
    "prepare",
    "refuse_discrete",
]


@dataclass
class SampleCompletion(Completion):
    """A completion computed from samples.

    :ivar samples: by site name, ``(chain, draw, row, ...)`` tensors: every latent site, and
        ``"x"``, the completed data (observed entries equal to the input).
    :ivar accept_rate: ``(B,)`` mean Metropolis acceptance rate per row (``"mwg"`` only).
    :ivar ess: ``(B,)`` effective sample size of the importance weights (``"importance"``).
    :ivar divergences: bool, divergent transitions: ``(chain, draw)`` for ``"nuts"`` (its
        chains move every row together), ``(chain, draw, row)`` for ``"hmc"``.

    ``x`` is the Rao-Blackwellised posterior predictive mean, the average over samples of the
    decoder mean :math:`\\mathbb{E}[x_m \\mid z]`; ``z`` is the empirical distribution of the
    samples of the latent site ``"z"`` (or of the first latent site).
    """

    samples: dict[str, torch.Tensor]
    accept_rate: torch.Tensor | None = None
    ess: torch.Tensor | None = None
    divergences: torch.Tensor | None = None

    def diagnostics(self, site: str | None = None, warn: bool = True) -> dict[str, torch.Tensor]:
        """Rank-normalised split R-hat and bulk effective sample size (Vehtari et al. 2021; the
        estimators of ArviZ, vectorised over elements) per element of a latent site, each
        shaped like one draw ``(B, ...)``; needs at least 2 chains of 4 draws.

        :param bool warn: warn (:class:`~pgm3d.evaluation.readings.PoorDiagnosticWarning`)
            when the worst R-hat is above 1.01 or the fewest effective draws below 100, saying
            what to do."""
        name = site or _main_latent(self.samples)
        s = self.samples[name]
        if s.shape[0] < 2 or s.shape[1] < 4:
            raise ValueError("R-hat needs at least 2 chains of at least 4 draws")
        from pgm3d.evaluation.convergence import rhat_ess  # diagnostics are evaluation's

        rhat, ess = rhat_ess(s.detach().double().cpu().numpy())
        if warn:
            from pgm3d.evaluation.readings import warn_if_poor

            warn_if_poor(f"the {self.method} draws of {name!r}", max_rhat=float(rhat.max()),
                         min_ess=float(ess.min()))  # fmt: skip
        as_tensor = lambda a: torch.as_tensor(a, dtype=s.dtype, device=s.device)  # noqa: E731
        return {"rhat": as_tensor(rhat), "ess": as_tensor(ess)}

    def to_arviz(self, model=None, *, context=None, include_x: bool = False):
        """The draws as ArviZ data (arviz 0.x ``InferenceData`` or a 1.x ``DataTree``) with
        named dimensions (``row``, ``latent``, ``entry``):

        * ``posterior``: every latent site, ``(chain, draw, row, latent...)`` (and the completed
          data ``x`` with ``include_x``);
        * ``sample_stats``: what the sampler measured — MwG's acceptance rate and the importance
          sampler's ESS (per row, the same at every draw: neither keeps a per-draw record),
          NUTS's divergences (per draw);
        * ``observed_data``: the rows as given, NaN where missing;
        * ``log_likelihood`` (with ``model``): :func:`pointwise_log_likelihood`, each row's
          observed entries at each draw, so ``az.loo`` and ``az.waic`` run over the rows.

        :param model: the model the completion was drawn from (for ``log_likelihood``).
        :param context: its conditioning inputs, as given to :func:`~pgm3d.complete`.
        """
        from pgm3d.evaluation.arviz import from_groups

        numpy = lambda t: t.detach().cpu().numpy()  # noqa: E731
        posterior, dims = {}, {}
        for name, value in self.samples.items():
            if name == "x" and not include_x:
                continue
            posterior[name] = numpy(value)
            inner = value.dim() - 3
            dims[name] = ["row", *(["entry"] if name == "x" else _latent_dims(name, inner))]
        C, S = next(iter(self.samples.values())).shape[:2]
        stats = {}
        per_draw = lambda t: numpy(t).reshape(1, 1, -1).repeat(C, 0).repeat(S, 1)  # noqa: E731
        if self.accept_rate is not None:
            stats["acceptance_rate"] = per_draw(self.accept_rate)
        if self.ess is not None:
            stats["ess"] = per_draw(self.ess)
        if self.divergences is not None:
            stats["diverging"] = numpy(self.divergences)  # (chain, draw[, row])
        observed = torch.where(self.mask, self.x, torch.nan)
        groups = {
            "posterior": posterior,
            "sample_stats": stats,
            "observed_data": {"x": numpy(observed)},
        }
        if model is not None:
            ll = pointwise_log_likelihood(model, self, context=context)
            groups["log_likelihood"] = {"x": numpy(ll)}
        return from_groups(
            groups,
            {
                "posterior": dims,
                "sample_stats": {
                    "acceptance_rate": ["row"],
                    "ess": ["row"],
                    **(
                        {"diverging": ["row"]}
                        if self.divergences is not None and self.divergences.dim() == 3
                        else {}
                    ),
                },
                "observed_data": {"x": ["row", "entry"]},
                "log_likelihood": {"x": ["row"]},
            },
        )


def _latent_dims(name: str, inner: int) -> list[str]:
    """Names of a latent site's dimensions after ``row``: ``latent`` for a vector, else
    ``{name}_dim_{i}``."""
    if inner == 1:
        return ["latent"]
    return [f"{name}_dim_{i}" for i in range(inner)]


def _main_latent(samples: dict) -> str:
    return "z" if "z" in samples else next(n for n in samples if n != "x")


def refuse_discrete(structure: Structure, method: str) -> None:
    """Raise before any sampling if a latent site is discrete: ``method`` (NUTS, HMC) moves
    latents by Hamiltonian dynamics."""
    if structure.discrete:
        name, kind = next(iter(structure.discrete.items()))
        raise ContractError(
            f"{method} moves continuous latents by Hamiltonian dynamics, but site {name!r} "
            f"({kind}) is discrete; use 'mwg', 'importance' or 'pseudo_gibbs'"
        )


def check_sampler_options(**options) -> None:
    """Every sampler option is a positive int (warm-up may be zero)."""
    for name, value in options.items():
        low = 0 if name == "warmup" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def prepare(model, x, mask, context, guide, what: str) -> tuple[Bound, Structure, dict]:
    """The checked pair a sampler runs: bound to its context, with the global latents held at
    the guide's point estimate :math:`\\hat\\theta` (:mod:`pgm3d.inference.globals`).

    :returns: ``(bound, structure, theta_hat)``.
    :raises ContractError: before any sampling, if the pair's latents lie in other plates
        than the data plate, or its observed site does not hold the data entry for entry.
    """
    pair = as_model(model, guide)
    ctx = pair.context_of(context, x)
    s = pair.check(x, mask, ctx)
    s.refuse_other_plates("the completion back ends")
    s.refuse_unless_holds_data(what)
    bound = pair.bind(ctx)
    theta = point_estimate(bound, x, mask) if s.global_latents else {}
    return (bound.with_fixed(theta) if theta else bound), s, theta


@dataclass
class Decoded:
    """The observed site's distribution :math:`p(x \\mid z)` at ``P`` particles of latents
    for ``B`` rows, read out as ``(P, B, D)`` data rows."""

    fn: Distribution
    P: int
    B: int
    D: int
    #: the site's value in the trace (the data rows, tiled over particles)
    value: torch.Tensor | None = None

    def sample(self) -> torch.Tensor:
        return obs_rows(self.fn.sample(), self.P, self.B, self.D)

    @property
    def mean(self) -> torch.Tensor:
        return obs_rows(self.fn.mean, self.P, self.B, self.D)


def decode_latents(bound: Bound, latents: dict, x: torch.Tensor, structure: Structure) -> Decoded:
    """The model's observed site with the local latents fixed to ``latents``.

    :param latents: site name -> row view ``(P, B, *event)`` (``P`` particles).
    :param x: ``(B, D)`` data passed to the model (complete: no NaN).
    """
    s = structure
    P = next(iter(latents.values())).shape[0]
    values = {n: to_trace(v, n, s.nesting, s) for n, v in latents.items()}
    fn = bound.model
    if s.layout == "vectorized":
        fn = pyro.plate(PARTICLES, P, dim=-(s.nesting + 1))(fn)
    xs = tile(x, None, P, s)[0]
    trace = poutine.trace(poutine.condition(fn, data=values)).get_trace(xs, None)
    site = prune_subsample_sites(trace).nodes[s.obs]
    return Decoded(site["fn"], P, x.shape[0], x.shape[1], site["value"])


def pointwise_log_likelihood(
    model, completion: SampleCompletion, *, context=None, guide=None, chunk: int = 64
) -> torch.Tensor:
    r""":math:`\log p(x_{v,i} \mid z^{(c,s)}_i)`: the log-density of each row's observed
    entries at each draw of its latents, ``(chain, draw, row)`` — ArviZ's pointwise
    log-likelihood, for PSIS-LOO (``az.loo``) and WAIC over the rows.

    :param model: the model the completion was drawn from.
    :param completion: a sampler's :class:`SampleCompletion` (its ``x`` holds the observed
        entries where ``mask`` is True).
    :param context: the model's conditioning inputs, as given to :func:`~pgm3d.complete`.
    :param int chunk: draws decoded at once.
    :raises pgm3d.handlers.NotPerEntry: rows with missing entries and an observed site whose
        density does not factorise over entries (they cannot be scored apart).
    """
    x, mask = completion.x, completion.mask
    bound, s, _ = prepare(model, x, mask, context, guide, "the pointwise log-likelihood")
    latents = {n: v for n, v in completion.samples.items() if n != "x"}
    C, S = next(iter(latents.values())).shape[:2]
    flat = {n: v.reshape(C * S, *v.shape[2:]) for n, v in latents.items()}
    filled = fill_where_missing(x, mask, torch.zeros_like(x))
    B, D = x.shape
    out = []
    with torch.no_grad():
        for i in range(0, C * S, chunk):
            decoded = decode_latents(bound, {n: v[i : i + chunk] for n, v in flat.items()},
                                     filled, s)  # fmt: skip
            entrywise = _entrywise(decoded.fn)
            if entrywise is None:  # the samplers refuse such sites before drawing
                raise ValueError("the observed site's entries are coupled: no per-entry density")
            lp = obs_rows(entrywise.log_prob(decoded.value), decoded.P, B, D)
            out.append(torch.where(mask, lp, 0.0).sum(-1))
    return torch.cat(out).reshape(C, S, B)


def _entrywise(fn: Distribution) -> Distribution | None:
    """The observed site's distribution with its event dimensions and masks taken off, so that
    ``log_prob`` is per entry; None when its entries are coupled (a multivariate density)."""
    while isinstance(fn, dist.Independent | torch.distributions.Independent
                     | dist.MaskedDistribution):  # fmt: skip
        fn = fn.base_dist
    return fn if fn.event_shape == () else None


def obs_log_prob(site: dict, x: torch.Tensor, structure: Structure, P: int = 1) -> torch.Tensor:
    """The observed site's (scaled, masked) log-density at data rows ``x (B, D)``, per
    particle and row: ``(P, B)``."""
    s = structure
    value = x.reshape(x.shape[0], *s.obs_row_shape) if s.obs_row_shape else x
    lp = scale_and_mask(site["fn"].log_prob(value), site["scale"], site["mask"])
    return _per_datum({**site, "log_prob": lp}, s.nesting, (P, x.shape[0]), s)


def rows_view(flags: torch.Tensor, site: dict, structure: Structure = PGM3D) -> torch.Tensor:
    """``(B,)`` row flags shaped to broadcast against a site's value (and the parameters of
    its distribution)."""
    value = site["value"]
    event_dim = site["fn"].event_dim
    data_dim = next(f.dim for f in site["cond_indep_stack"] if f.name == structure.plate)
    shape = [1] * value.dim()
    shape[value.dim() - event_dim + data_dim] = flags.shape[0]
    return flags.view(shape)


def finish(
    x: torch.Tensor,
    mask: torch.Tensor,
    latents: dict[str, torch.Tensor],
    x_samples: torch.Tensor,
    x_mean: torch.Tensor,
    method: str,
    **extra,
) -> SampleCompletion:
    """Assemble a :class:`SampleCompletion` from ``(C, S, B, ...)`` samples and the ``(B, D)``
    Rao-Blackwellised mean."""
    C, S = x_samples.shape[:2]
    main = latents[_main_latent(latents)]
    flat = main.reshape(C * S, *main.shape[2:]).movedim(0, 1)  # (B, C*S, ...)
    z = dist.Empirical(flat, flat.new_zeros(flat.shape[:2]))
    samples = {**latents, "x": fill_where_missing(x, mask, x_samples)}
    return SampleCompletion(
        z=z,
        x=fill_where_missing(x, mask, x_mean),
        mask=mask,
        method=method,
        samples=samples,
        **extra,
    )


@dataclass
class ChainState:
    """One state of ``C * B`` chains: latents ``(1, C*B, ...)``, the completed data
    ``(C*B, D)``, the decoder mean at the latents, and accepted-move counts."""

    latents: dict[str, torch.Tensor]
    x: torch.Tensor
    mean: torch.Tensor
    accepted: torch.Tensor


def run_chains(
    model,
    guide,
    x,
    mask,
    step,
    *,
    context,
    chains,
    warmup,
    thin,
    num_samples,
    seed,
    progress,
    method,
    options: dict | None = None,
    refuse_discrete=None,
) -> SampleCompletion:
    """Start ``chains`` chains per row from the guide, run ``step`` (a function
    ``step(state, context) -> ChainState``) ``warmup + thin * num_samples`` times, keep every
    ``thin``-th state after warm-up, and assemble the result.

    The context ``step`` sees holds the bound pair, its structure, the repeated rows and mask,
    the sweep ``t`` and ``warmup`` (a step may adapt itself during warm-up), and ``options``;
    a step that sets ``context["divergent"]`` (``(C·B,)`` bool) has it recorded per kept draw.

    :param refuse_discrete: ``refuse_discrete(structure)`` raises for latents the step cannot
        move, before any sampling."""
    from pgm3d._progress import progress_bar

    check_sampler_options(chains=chains, warmup=warmup, thin=thin, num_samples=num_samples)
    bound, s, _ = prepare(model, x, mask, context, guide, f"completion method {method!r}")
    if refuse_discrete is not None:
        refuse_discrete(s)
    if seed is not None:
        pyro.set_rng_seed(seed)
    B, D = x.shape
    n = chains * B
    x_rep, mask_rep = x.repeat(chains, 1), mask.repeat(chains, 1)
    zero_filled = fill_where_missing(x_rep, mask_rep, torch.zeros_like(x_rep))
    with torch.no_grad():
        trace = trace_guide(bound.guide, x_rep, mask_rep, 1, s.nesting, sites=s)  # q(z | x_v)
        latents = row_latents(trace, 1, n, s.nesting, s)
        decoded = decode_latents(bound, latents, zero_filled, s)
        state = ChainState(
            latents,
            fill_where_missing(x_rep, mask_rep, decoded.sample()[0]),
            decoded.mean[0],
            x.new_zeros(n),
        )
        ctx = {"bound": bound, "structure": s, "x": x_rep, "mask": mask_rep, "warmup": warmup,
               **(options or {})}  # fmt: skip
        kept_latents, kept_x, kept_divergent, mean_sum = [], [], [], 0.0
        total = warmup + thin * num_samples
        for t in progress_bar(range(total), desc=method, progress=progress):
            ctx["t"] = t
            # Pyro's checks (supports, shapes) meet the same rows at every sweep: the first
            # runs them, the rest do without (they cost about a tenth of a small sweep)
            with contextlib.nullcontext() if t == 0 else pyro.validation_enabled(False):
                state = step(state, ctx)
            if t >= warmup and (t - warmup + 1) % thin == 0:
                kept_latents.append(state.latents)
                kept_x.append(state.x)
                kept_divergent.append(ctx.get("divergent"))
                mean_sum = mean_sum + state.mean

    def by_chain(values):  # S tensors (C*B, ...) -> (C, S, B, ...)
        stacked = torch.stack(values)
        return stacked.reshape(len(values), chains, B, *stacked.shape[2:]).transpose(0, 1)

    latents = {name: by_chain([k[name][0] for k in kept_latents]) for name in kept_latents[0]}
    x_mean = (mean_sum / num_samples).reshape(chains, B, D).mean(0)
    moves = method in ("mwg", "hmc")  # Metropolis moves: their acceptance is a diagnostic
    accept = (state.accepted / total).reshape(chains, B).mean(0) if moves else None
    divergences = None
    if kept_divergent and kept_divergent[0] is not None:
        divergences = by_chain(kept_divergent)  # (C, S, B)
    return finish(x, mask, latents, by_chain(kept_x), x_mean, method, accept_rate=accept,
                  divergences=divergences)  # fmt: skip


def chain_method(name: str, step, summary: str):
    """A completion method running :func:`run_chains` with ``step``, with the thesis's
    defaults (warm-up 100, thinning 10, 25 draws per chain)."""

    def method(
        model,
        x,
        mask,
        *,
        context=None,
        chains: int = 4,
        warmup: int = 100,
        thin: int = 10,
        num_samples: int = 25,
        guide=None,
        seed: int | None = None,
        progress: bool | None = None,
    ) -> SampleCompletion:
        return run_chains(
            model,
            guide,
            x,
            mask,
            step,
            context=context,
            chains=chains,
            warmup=warmup,
            thin=thin,
            num_samples=num_samples,
            seed=seed,
            progress=progress,
            method=name,
        )

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"""{summary}

    :param context: row-aligned conditioning inputs of the model (never imputed).
    :param int chains: chains per row, all run as one batch.
    :param int warmup: sweeps discarded first (thesis: 100).
    :param int thin: keep every ``thin``-th sweep after warm-up (thesis: 10).
    :param int num_samples: draws kept per chain (thesis: 25).
    :param guide: encoder to use instead of the model's guide.
    :param seed: seeds Pyro's generators first.
    :param progress: progress bar over sweeps (``None``: only on a terminal).
    """
    return method
