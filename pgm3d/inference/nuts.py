r"""No-U-Turn sampling of the latents given the observed entries (``"nuts"``, small models).

Pyro's NUTS (Hoffman & Gelman 2014) runs on :math:`p(z \mid x_v) \propto p(x_v \mid z)p(z)`
(the masked likelihood marginalises the missing entries), all rows' latents jointly, one chain
after another; the missing entries are then drawn from :math:`p(x_m \mid z)` at the kept
samples. Exact in the limit, but its cost grows with the number of latent dimensions of the
whole batch, so it is meant for small models and checks.
"""

from __future__ import annotations

from dataclasses import replace

import pyro
import pyro.poutine as poutine
import torch
from pyro.infer import MCMC, NUTS

from pgm3d.inference.base import COMPLETION_METHODS
from pgm3d.inference.samples import (
    SampleCompletion,
    check_sampler_options,
    decode_latents,
    finish,
    prepare,
    refuse_discrete,
)
from pgm3d.inference.trace import rows_of
from pgm3d.missing import fill_where_missing

__all__ = ["nuts"]


# not run unless asked for by name: exact HMC is for small models and checks
@COMPLETION_METHODS.register(
    "nuts",
    by_default=False,
    kind="sampler",
    unit="{chains} chain(s) x ({warmup} warm-up + {num_samples} draws)",
)
def nuts(
    model,
    x,
    mask,
    *,
    context=None,
    chains: int = 4,
    warmup: int = 100,
    thin: int = 1,
    num_samples: int = 25,
    max_tree_depth: int = 10,
    seed: int | None = None,
    progress: bool | None = None,
) -> SampleCompletion:
    """Complete ``x`` with NUTS samples of :math:`p(z \\mid x_v)`.

    :param context: row-aligned conditioning inputs of the model (never imputed).
    :param int chains: chains, run one after another.
    :param int warmup: adaptation steps per chain.
    :param int thin: keep every ``thin``-th sample.
    :param int num_samples: draws kept per chain.
    :param int max_tree_depth: NUTS's maximum tree depth.
    :param seed: seeds Pyro's generators first (chain ``c`` then uses ``seed + c``).
    :raises ContractError: a latent site is discrete (before any sampling).
    """
    check_sampler_options(
        chains=chains,
        warmup=warmup,
        thin=thin,
        num_samples=num_samples,
        max_tree_depth=max_tree_depth,
    )
    bound, s, theta = prepare(model, x, mask, context, None, "completion method 'nuts'")
    refuse_discrete(s, "NUTS")
    B, D = x.shape
    zero_filled = fill_where_missing(x, mask, torch.zeros_like(x))
    # the global latents are observed at their point estimate, so NUTS leaves them alone
    target = bound.with_fixed(None).model
    if theta:
        target = poutine.condition(target, data=theta)
    single = replace(s, layout="rows")  # NUTS runs the model without a particle plate
    runs, divergences = [], []
    for c in range(chains):
        if seed is not None:
            pyro.set_rng_seed(seed + c)
        kernel = NUTS(target, max_tree_depth=max_tree_depth, max_plate_nesting=s.nesting)
        mcmc = MCMC(
            kernel,
            num_samples=num_samples * thin,
            warmup_steps=warmup,
            disable_progbar=progress is not True,
        )
        with torch.enable_grad():  # HMC needs gradients even under a caller's no_grad
            mcmc.run(zero_filled, mask)
        draws = {n: v[thin - 1 :: thin].detach() for n, v in mcmc.get_samples().items()}
        # a kept draw is divergent if any transition since the last kept one diverged
        diverged = torch.zeros(num_samples * thin, dtype=torch.bool)
        diverged[list(mcmc.diagnostics()["divergences"]["chain 0"])] = True
        divergences.append(diverged.reshape(num_samples, thin).any(-1))
        runs.append(
            {
                n: torch.stack([rows_of(d, n, 1, B, s.nesting, single)[0] for d in draws[n]])
                for n in s.local_latents
            }
        )
    latents = {n: torch.stack([r[n] for r in runs]) for n in runs[0]}  # (C, S, B, ...)
    flat = {n: v.reshape(chains * num_samples, *v.shape[2:]) for n, v in latents.items()}
    with torch.no_grad():
        decoded = decode_latents(bound, flat, zero_filled, s)
        draws = decoded.sample().reshape(chains, num_samples, B, D)
        mean = decoded.mean.mean(0)
    return finish(x, mask, latents, draws, mean, "nuts",
                  divergences=torch.stack(divergences).to(x.device))  # fmt: skip
