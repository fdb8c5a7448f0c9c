r"""Batched Hamiltonian Monte Carlo completion: one chain per (chain, row), all moved at once.

The target is the exact conditional of each row's local latents given its observed entries,
:math:`p(z \mid x_v) \propto p(z)\, p(x_v \mid z)` (the missing entries marginalised by the
masked likelihood; global latents held at the guide's point estimate). Every sweep takes
``num_steps`` leapfrog steps (Neal 2011) of every chain together — one model pass and one
gradient per step for the whole batch, where Pyro's NUTS runs one chain at a time over all rows
jointly — then a Metropolis correction per chain, then draws the missing entries
:math:`x_m \sim p(x_m \mid z)` for the completion.

Each chain has its own step size, adapted during warm-up by dual averaging (Hoffman & Gelman
2014, Algorithm 5; target acceptance 0.8 by default) and fixed after it, so the kept draws come
from a fixed kernel. The trajectory length is ``num_steps`` steps (no NUTS tree, no ChEES
adaptation: a fixed length keeps every chain in lock-step). The mass matrix is the identity.
A transition whose energy error exceeds 1,000 is divergent (recorded per chain, row and draw,
and rejected).
"""

from __future__ import annotations

import math
from functools import partial

import torch

from pgm3d.inference.base import COMPLETION_METHODS
from pgm3d.inference.samples import (
    ChainState,
    SampleCompletion,
    decode_latents,
    refuse_discrete,
    run_chains,
)
from pgm3d.inference.trace import (
    log_weights,
    obs_rows,
    trace_guide,
    trace_with_rows,
)
from pgm3d.missing import fill_where_missing

__all__ = ["hmc"]

_DIVERGENCE = 1000.0  # energy error (nats) beyond which a transition is divergent


def _log_target(ctx: dict, latents: dict) -> torch.Tensor:
    """:math:`\\log p(z) + \\log p(x_v \\mid z)` per chain-row ``(n,)`` at row-view
    ``latents`` (``(1, n, ...)``), differentiable in them."""
    bound, s = ctx["bound"], ctx["structure"]
    replayed = trace_with_rows(ctx["template"], latents, s.nesting, s)
    lw = log_weights(bound.model, bound.guide, ctx["filled"], ctx["mask"], 1, s.nesting,
                     guide_trace=replayed, sites=s)  # fmt: skip
    return (lw.log_prior + lw.log_lik)[0]


def _gradient(ctx: dict, latents: dict) -> tuple[torch.Tensor, dict]:
    with torch.enable_grad():
        live = {k: v.detach().requires_grad_(True) for k, v in latents.items()}
        target = _log_target(ctx, live)
        grads = torch.autograd.grad(target.sum(), list(live.values()))
    return target.detach(), {k: g.detach() for k, g in zip(live, grads, strict=True)}


def _per_row(eps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(n,)`` step sizes shaped to broadcast against a row view ``(1, n, ...)``."""
    return eps.view(1, -1, *([1] * (like.dim() - 2)))


def _kinetic(momentum: dict) -> torch.Tensor:
    return sum(0.5 * p.pow(2).reshape(1, p.shape[1], -1).sum(-1)[0] for p in momentum.values())


def _step(state, ctx: dict):
    s, t = ctx["structure"], ctx["t"]
    if "template" not in ctx:
        ctx["template"] = trace_guide(ctx["bound"].guide, ctx["x"], ctx["mask"], 1, s.nesting,
                                      sites=s)  # fmt: skip
        ctx["filled"] = fill_where_missing(ctx["x"], ctx["mask"], torch.zeros_like(ctx["x"]))
        n = ctx["x"].shape[0]
        ctx["eps"] = torch.full(
            (n,), ctx["step_size"], dtype=ctx["x"].dtype, device=ctx["x"].device
        )
        ctx["adapt"] = {"mu": math.log(10 * ctx["step_size"]), "h": torch.zeros_like(ctx["eps"]),
                        "log_eps_bar": torch.zeros_like(ctx["eps"])}  # fmt: skip
        ctx["current"] = _gradient(ctx, state.latents)
    # each sweep, each chain's step size jittered (Neal 2011, §5.4.2.2): a fixed trajectory
    # length can be near a period of the target's oscillation and then barely moves
    eps = ctx["eps"] * torch.empty_like(ctx["eps"]).uniform_(0.5, 1.5)
    z0 = state.latents
    target0, grad0 = ctx["current"]
    momentum = {k: torch.randn_like(v) for k, v in z0.items()}
    energy0 = -target0 + _kinetic(momentum)
    z, grad, target = dict(z0), grad0, target0
    with torch.no_grad():
        for _ in range(ctx["num_steps"]):  # leapfrog, every chain and row at once
            momentum = {k: p + 0.5 * _per_row(eps, p) * grad[k] for k, p in momentum.items()}
            z = {k: v + _per_row(eps, v) * momentum[k] for k, v in z.items()}
            target, grad = _gradient(ctx, z)
            momentum = {k: p + 0.5 * _per_row(eps, p) * grad[k] for k, p in momentum.items()}
    energy = -target + _kinetic(momentum)
    error = torch.nan_to_num(energy - energy0, nan=math.inf)
    divergent = error > _DIVERGENCE
    accept_prob = torch.exp(-error.clamp_min(0)).clamp(max=1.0)
    accept_prob = torch.where(divergent, 0.0, accept_prob)
    accept = torch.rand_like(accept_prob) < accept_prob
    keep = {k: torch.where(_per_row(accept, v), v, z0[k]) for k, v in z.items()}
    ctx["current"] = (
        torch.where(accept, target, target0),
        {k: torch.where(_per_row(accept, g), g, grad0[k]) for k, g in grad.items()},
    )
    ctx["divergent"] = divergent
    if t < ctx["warmup"]:
        _dual_averaging(ctx, accept_prob, t + 1)
    elif t == ctx["warmup"] and ctx["warmup"] > 0:
        ctx["eps"] = ctx["adapt"]["log_eps_bar"].exp()
    decoded = decode_latents(ctx["bound"], keep, ctx["filled"], s)
    n, D = ctx["x"].shape
    x_new = fill_where_missing(ctx["x"], ctx["mask"], obs_rows(decoded.sample(), 1, n, D)[0])
    return ChainState(keep, x_new, obs_rows(decoded.mean, 1, n, D)[0],
                      state.accepted + accept.to(state.accepted.dtype))  # fmt: skip


def _dual_averaging(ctx: dict, accept_prob: torch.Tensor, m: int) -> None:
    """One update of each chain's step size towards the target acceptance (Hoffman & Gelman
    2014, Alg. 5: gamma 0.05, t0 10, kappa 0.75)."""
    a = ctx["adapt"]
    eta = 1.0 / (m + 10)
    a["h"] = (1 - eta) * a["h"] + eta * (ctx["target_accept"] - accept_prob)
    log_eps = a["mu"] - math.sqrt(m) / 0.05 * a["h"]
    weight = m**-0.75
    a["log_eps_bar"] = weight * log_eps + (1 - weight) * a["log_eps_bar"]
    ctx["eps"] = log_eps.exp()


# not run unless asked for by name, like NUTS: the exact-gradient reference among the samplers
@COMPLETION_METHODS.register(
    "hmc",
    by_default=False,
    kind="sampler",
    unit="{chains} chain(s) x ({warmup} warm-up + {num_samples} draws) x {num_steps} steps",
)
def hmc(
    model,
    x,
    mask,
    *,
    context=None,
    chains: int = 4,
    warmup: int = 100,
    thin: int = 1,
    num_samples: int = 100,
    num_steps: int = 10,
    step_size: float = 0.1,
    target_accept: float = 0.8,
    guide=None,
    seed: int | None = None,
    progress: bool | None = None,
) -> SampleCompletion:
    """Batched HMC on :math:`p(z \\mid x_v)`, every (chain, row) a chain of its own (module
    docstring). Chains start at a draw of the guide.

    :param context: row-aligned conditioning inputs of the model (never imputed).
    :param int chains: chains per row.
    :param int warmup: sweeps of step-size adaptation, discarded.
    :param int thin: keep every ``thin``-th sweep after warm-up.
    :param int num_samples: draws kept per chain.
    :param int num_steps: leapfrog steps per sweep.
    :param float step_size: every chain's first step size.
    :param float target_accept: the acceptance rate dual averaging aims for.
    :param guide: encoder to use instead of the model's guide (the starting points).
    :param seed: seeds Pyro's generators first.
    :param progress: progress bar over sweeps (``None``: only on a terminal).
    :returns: a :class:`~pgm3d.inference.SampleCompletion` with acceptance rates and, per
        chain, draw and row, divergences.
    :raises ContractError: a discrete latent site (before any sampling).
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")
    if not (isinstance(step_size, int | float) and 0 < step_size < math.inf):
        raise ValueError(f"step_size must be a positive number, got {step_size!r}")
    if not (isinstance(target_accept, int | float) and 0 < target_accept < 1):
        raise ValueError(f"target_accept must be in (0, 1), got {target_accept!r}")
    options = {"num_steps": num_steps, "step_size": float(step_size),
               "target_accept": float(target_accept)}  # fmt: skip
    return run_chains(model, guide, x, mask, _step, context=context, chains=chains,
                      warmup=warmup, thin=thin, num_samples=num_samples, seed=seed,
                      progress=progress, method="hmc", options=options,
                      refuse_discrete=partial(refuse_discrete, method="HMC"))  # fmt: skip
