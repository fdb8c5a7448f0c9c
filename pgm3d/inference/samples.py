"""Sample-based completion: the result type and the machinery its back ends share.

All chains and rows advance together: ``C`` chains of ``B`` rows are one batch of ``C * B``
rows for the model and guide, so one sweep of every chain costs one batched pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from pyro.poutine.util import prune_subsample_sites

from pgm3d._arviz import from_posterior
from pgm3d._convergence import rhat_ess
from pgm3d._validation import fill_where_missing
from pgm3d.inference._tracing import DATA_PLATE, PARTICLES
from pgm3d.inference.base import Completion

__all__ = ["SampleCompletion", "check_sampler_options", "decode_latents", "finish"]


@dataclass
class SampleCompletion(Completion):
    """A completion computed from samples.

    :ivar samples: by site name, ``(chain, draw, row, ...)`` tensors: every latent site, and
        ``"x"``, the completed data (observed entries equal to the input).
    :ivar accept_rate: ``(B,)`` mean Metropolis acceptance rate per row (``"mwg"`` only).
    :ivar ess: ``(B,)`` effective sample size of the importance weights (``"importance"``).

    ``x`` is the Rao-Blackwellised posterior predictive mean, the average over samples of the
    decoder mean :math:`\\mathbb{E}[x_m \\mid z]`; ``z`` is the empirical distribution of the
    samples of the latent site ``"z"`` (or of the first latent site).
    """

    samples: dict[str, torch.Tensor]
    accept_rate: torch.Tensor | None = None
    ess: torch.Tensor | None = None

    def diagnostics(self, site: str | None = None) -> dict[str, torch.Tensor]:
        """Rank-normalised split R-hat and bulk effective sample size (Vehtari et al. 2021; the
        estimators of ArviZ, vectorised over elements) per element of a latent site, each
        shaped like one draw ``(B, ...)``; needs at least 2 chains of 4 draws."""
        name = site or _main_latent(self.samples)
        s = self.samples[name]
        if s.shape[0] < 2 or s.shape[1] < 4:
            raise ValueError("R-hat needs at least 2 chains of at least 4 draws")
        rhat, ess = rhat_ess(s.detach().double().cpu().numpy())
        as_tensor = lambda a: torch.as_tensor(a, dtype=s.dtype, device=s.device)  # noqa: E731
        return {"rhat": as_tensor(rhat), "ess": as_tensor(ess)}

    def to_arviz(self, include_x: bool = False):
        """The samples as ArviZ data (``az.from_dict``: arviz 0.x InferenceData or a 1.x
        DataTree), posterior group only; ``include_x`` adds the completed data."""
        return from_posterior(
            {
                name: value.detach().cpu().numpy()
                for name, value in self.samples.items()
                if include_x or name != "x"
            }
        )


def _main_latent(samples: dict) -> str:
    return "z" if "z" in samples else next(n for n in samples if n != "x")


def check_sampler_options(**options) -> None:
    """Every sampler option is a positive int (warm-up may be zero)."""
    for name, value in options.items():
        low = 0 if name == "warmup" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def decode_latents(model, latents: dict, x: torch.Tensor, nesting: int):
    """The model's likelihood site ``"x"`` with latents fixed to ``latents``.

    :param latents: site name -> ``(P, B, ...)`` values (``P`` particles).
    :param x: ``(B, D)`` data passed to the model (observed everywhere).
    :returns: the ``"x"`` site's distribution, batch ``(P, B)``, event ``(D,)``.
    """
    P = next(iter(latents.values())).shape[0]
    fn = pyro.plate(PARTICLES, P, dim=-(nesting + 1))(model.model)
    trace = poutine.trace(poutine.condition(fn, data=latents)).get_trace(x, None)
    return prune_subsample_sites(trace).nodes["x"]["fn"]


def rows_view(flags: torch.Tensor, site: dict) -> torch.Tensor:
    """``(B,)`` row flags shaped to broadcast against a site's value without its particle dim."""
    value = site["value"][0]
    event_dim = site["fn"].event_dim
    data_dim = next(f.dim for f in site["cond_indep_stack"] if f.name == DATA_PLATE)
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
    model, guide, x, mask, step, *, chains, warmup, thin, num_samples, seed, progress, method
) -> SampleCompletion:
    """Start ``chains`` chains per row from the guide, run ``step`` (a function
    ``step(state, context) -> ChainState``) ``warmup + thin * num_samples`` times, keep every
    ``thin``-th state after warm-up, and assemble the result."""
    from pgm3d._progress import progress_bar
    from pgm3d.inference._tracing import latent_values, plate_nesting, trace_guide

    check_sampler_options(chains=chains, warmup=warmup, thin=thin, num_samples=num_samples)
    guide = model.guide if guide is None else guide
    if seed is not None:
        pyro.set_rng_seed(seed)
    B, D = x.shape
    x_rep, mask_rep = x.repeat(chains, 1), mask.repeat(chains, 1)
    zero_filled = fill_where_missing(x_rep, mask_rep, torch.zeros_like(x_rep))
    with torch.no_grad():
        nesting = plate_nesting(model.model, guide, zero_filled, mask_rep)
        latents = latent_values(trace_guide(guide, x_rep, mask_rep, 1, nesting))  # q(z | x_v)
        fn = decode_latents(model, latents, zero_filled, nesting)
        state = ChainState(
            latents,
            fill_where_missing(x_rep, mask_rep, fn.sample()[0]),
            fn.mean[0],
            x.new_zeros(chains * B),
        )
        context = {"model": model, "guide": guide, "x": x_rep, "mask": mask_rep, "nesting": nesting}
        kept_latents, kept_x, mean_sum = [], [], 0.0
        total = warmup + thin * num_samples
        for t in progress_bar(range(total), desc=method, progress=progress):
            state = step(state, context)
            if t >= warmup and (t - warmup + 1) % thin == 0:
                kept_latents.append(state.latents)
                kept_x.append(state.x)
                mean_sum = mean_sum + state.mean

    def by_chain(values):  # S tensors (C*B, ...) -> (C, S, B, ...)
        stacked = torch.stack(values)
        return stacked.reshape(len(values), chains, B, *stacked.shape[2:]).transpose(0, 1)

    latents = {n: by_chain([k[n][0] for k in kept_latents]) for n in kept_latents[0]}
    x_mean = (mean_sum / num_samples).reshape(chains, B, D).mean(0)
    accept = (state.accepted / total).reshape(chains, B).mean(0) if method == "mwg" else None
    return finish(x, mask, latents, by_chain(kept_x), x_mean, method, accept_rate=accept)


def chain_method(name: str, step, summary: str):
    """A completion method running :func:`run_chains` with ``step``, with the thesis's
    defaults (warm-up 100, thinning 10, 25 draws per chain)."""

    def method(
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
        return run_chains(
            model,
            guide,
            x,
            mask,
            step,
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

    :param int chains: chains per row, all run as one batch.
    :param int warmup: sweeps discarded first (thesis: 100).
    :param int thin: keep every ``thin``-th sweep after warm-up (thesis: 10).
    :param int num_samples: draws kept per chain (thesis: 25).
    :param guide: encoder to use instead of ``model.guide``.
    :param seed: seeds Pyro's generators first.
    :param progress: progress bar over sweeps (``None``: only on a terminal).
    """
    return method
