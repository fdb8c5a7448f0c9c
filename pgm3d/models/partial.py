r"""Sites observed for some rows and latent for others (Siddharth et al. 2017's partially
supervised latents; Kingma et al. 2014's M2 labels).

A row-aligned tensor of values with :data:`UNKNOWN` (``-1``) where a row's value is not given:

- in the model, :func:`observe_where_known` scores the given values and leaves the others
  latent (as Pyro's ``obs_mask``: an observed site ``name + "_observed"`` masked to the known rows
  and a latent one ``name + "_unobserved"`` masked to the others);
- in the guide, :func:`guess_where_unknown` proposes the latent values from ``q``, masked to
  the unknown rows and marked for parallel enumeration, so ``TraceEnum_ELBO`` (the objective
  ``"enum"``) sums over every value exactly where the value is unknown:

.. math::
    \mathcal{L}(x, y) = \mathbb{E}_{q(z \mid x, y)}[\log p(x, y, z) - \log q(z \mid x, y)]
        \quad\text{(known)},\qquad
    \mathcal{U}(x) = \sum_y q(y \mid x)\,\big(\mathcal{L}(x, y) - \log q(y \mid x)\big)
        \quad\text{(unknown)}

(Kingma et al. 2014, eqs. 6–8). Under any other objective the guide's values are sampled
(a score-function estimate), which is valid but noisier.

Any model can use the pair — a discrete label, a cluster index, a known-for-some-rows style —
with the values passed as context.
"""

from __future__ import annotations

import pyro
import torch
from pyro import poutine

__all__ = ["UNKNOWN", "check_partial", "guess_where_unknown", "observe_where_known"]

#: the value that marks a row whose value is not given
UNKNOWN = -1


def check_partial(values: torch.Tensor, num_categories: int, name: str = "y") -> torch.Tensor:
    """The rows whose value is given (``values >= 0``); one clear message for values outside
    ``{UNKNOWN, 0, ..., num_categories - 1}`` or a non-integer tensor."""
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(values).__name__}")
    if values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer categories (a long tensor, {UNKNOWN} where not given), "
            f"got {values.dtype}"
        )
    bad = (values < UNKNOWN) | (values >= num_categories)
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{name} must be in 0..{num_categories - 1}, or {UNKNOWN} where not given; row {row} "
            f"has {int(values.flatten()[row])}"
        )
    return values >= 0


def observe_where_known(name: str, fn, values: torch.Tensor, known: torch.Tensor):
    """Model side: score ``values`` where ``known``, sample ``fn`` where not; returns the
    interleaved values (batch-shaped, with enumeration dimensions on the left when the guide
    enumerates). Every row known: a plain observed site ``name``."""
    if bool(known.all()):
        return pyro.sample(name, fn, obs=values)
    # Pyro's obs_mask= does the same split but adds a deterministic site whose log-density
    # is float32 for integer values, which breaks TraceEnum_ELBO's contraction in float64
    with poutine.mask(mask=known):
        observed = pyro.sample(f"{name}_observed", fn, obs=values.clamp_min(0))
    with poutine.mask(mask=~known):
        unobserved = pyro.sample(f"{name}_unobserved", fn)
    return torch.where(known, observed, unobserved)


def guess_where_unknown(name: str, fn, values: torch.Tensor, known: torch.Tensor):
    """Guide side: propose ``name + "_unobserved"`` from ``fn`` (``q(y | x)``) for the rows not
    ``known``, enumerated in parallel under ``TraceEnum_ELBO``; returns the known values where
    given and the proposal elsewhere. Every row known: no site, the values themselves."""
    if bool(known.all()):
        return values
    guess = pyro.sample(f"{name}_unobserved", fn.mask(~known), infer={"enumerate": "parallel"})
    return torch.where(known, values.clamp_min(0), guess)
