r"""Per-datapoint log-weights of any model/guide pair read by :mod:`pgm3d.contract`.

Running the guide with ``P`` particles and replaying the model against it gives, for
particle :math:`k` and row :math:`n`,

.. math::
    \log w_{kn} = \log p(x_n \mid z_{kn}, \theta) + \alpha\,[\log p(z_{kn} \mid \theta)
        - \log q(z_{kn} \mid x_n, \theta)],

split into its three parts, from which the ELBO, IWAE, DReG, RWS, importance sampling and the
MCMC back ends are all built, plus the *global* terms :math:`\alpha[\log p(\theta) - \log
q(\theta)]` of the sites outside the data plate, kept apart because they belong to no row.
``alpha`` is the KL weight of thesis eq. 3.5 (1 = the true posterior).

Particles are laid out as the pair's :class:`~pgm3d.contract.Structure` says: an outer
vectorised plate (``(P, B, ...)`` values), or ``P`` copies of the batch along the data plate
(``(P * B, ...)``) for models that cannot broadcast over a plate. :func:`rows_of` and
:func:`to_trace` convert a local latent between the trace's layout and the *row view*
``(P, B, *event)`` the samplers hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import pyro.poutine as poutine
import torch
from pyro.distributions.util import scale_and_mask
from pyro.poutine.util import prune_subsample_sites

from pgm3d.contract import PARTICLES, PGM3D, Structure
from pgm3d.handlers import FixValues, LatentScale, is_deterministic

__all__ = [
    "DATA_PLATE",
    "PARTICLES",
    "LatentScale",
    "LogWeights",
    "log_weights",
    "plate_nesting",
]

DATA_PLATE = "data"


def _sample_sites(trace) -> dict:
    return {
        n: s for n, s in trace.nodes.items() if s["type"] == "sample" and not is_deterministic(s)
    }


def _data_frame(site: dict, plate: str):
    return next((f for f in site["cond_indep_stack"] if f.name == plate), None)


def plate_nesting(model, guide, x, mask) -> int:
    """Deepest plate nesting of a model and guide of ``(x, mask)`` (run once, with nothing
    recorded and no random numbers consumed)."""
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), poutine.block():
        guide_tr = poutine.trace(guide).get_trace(x, mask)
        model_tr = poutine.trace(poutine.replay(model, trace=guide_tr)).get_trace(x, mask)
    nesting = 0
    for tr in (model_tr, guide_tr):
        for site in _sample_sites(prune_subsample_sites(tr)).values():
            for frame in site["cond_indep_stack"]:
                if frame.vectorized:
                    nesting = max(nesting, -frame.dim)
    return nesting


def _per_datum(site, nesting: int, shape: tuple[int, int], sites: Structure) -> torch.Tensor:
    """A local site's (scaled, masked) log-density summed to ``(particles, rows)``."""
    lp = site["log_prob"]
    P, B = shape
    if not torch.is_tensor(lp):
        return torch.full(shape, float(lp))
    frame = _data_frame(site, sites.plate)
    if sites.layout == "vectorized":
        ndim = nesting + 1
        lp = lp.reshape((1,) * (ndim - lp.dim()) + lp.shape)
        keep = (0, ndim + frame.dim)
        others = [d for d in range(ndim) if d not in keep]
        if others:
            lp = lp.sum(others, keepdim=True)
        return lp.reshape(lp.shape[keep[0]], lp.shape[keep[1]]).expand(shape)
    ndim = nesting
    lp = lp.reshape((1,) * (ndim - lp.dim()) + lp.shape)
    at = ndim + frame.dim
    others = [d for d in range(ndim) if d != at]
    if others:
        lp = lp.sum(others, keepdim=True)
    return lp.reshape(-1).expand(P * B).reshape(P, B)


def _global(site, nesting: int, P: int, sites: Structure) -> torch.Tensor:
    """A global site's log-density summed to ``(particles,)``."""
    lp = site["log_prob"]
    if not torch.is_tensor(lp):
        return torch.full((P,), float(lp))
    if sites.layout == "vectorized":
        lp = lp.reshape((1,) * (nesting + 1 - lp.dim()) + lp.shape)
        return lp.reshape(lp.shape[0], -1).sum(-1).expand(P)
    return lp.sum().expand(P)


@dataclass
class LogWeights:
    """Per-datapoint log-densities, each ``(P, B)`` for ``P`` particles and ``B`` rows, over
    the sites inside the data plate; the global sites' terms are ``(P,)``.

    :ivar log_lik: :math:`\\log p(x \\mid z)` of the observed site(s).
    :ivar log_prior: :math:`\\alpha \\log p(z)` of the model's local latent sites.
    :ivar log_q: :math:`\\alpha \\log q(z \\mid x)` of the guide's local sites.
    :ivar model_trace: the replayed model trace.
    :ivar guide_trace: the guide trace.
    :ivar global_p: :math:`\\alpha \\log p(\\theta)` of the model's global sites.
    :ivar global_q: :math:`\\alpha \\log q(\\theta)` of the guide's global sites.
    """

    log_lik: torch.Tensor
    log_prior: torch.Tensor
    log_q: torch.Tensor
    model_trace: object
    guide_trace: object
    global_p: torch.Tensor | float = 0.0
    global_q: torch.Tensor | float = 0.0

    @property
    def total(self) -> torch.Tensor:
        """:math:`\\log w = \\log p(x \\mid z) + \\alpha[\\log p(z) - \\log q(z \\mid x)]`,
        local terms only."""
        return self.log_lik + self.log_prior - self.log_q


def _particles(fn, num_particles: int, nesting: int, kl_weight: float, sites: Structure):
    if sites.layout == "vectorized":
        fn = pyro.plate(PARTICLES, num_particles, dim=-(nesting + 1))(fn)
    return LatentScale(kl_weight)(fn) if kl_weight != 1.0 else fn


def tile(x: torch.Tensor, mask, num_particles: int, sites: Structure):
    """The batch as the traces see it: itself, or ``P`` copies of it (rows layout)."""
    if sites.layout == "vectorized" or num_particles == 1:
        return x, mask
    return x.repeat(num_particles, 1), None if mask is None else mask.repeat(num_particles, 1)


def trace_guide(
    guide,
    x,
    mask,
    num_particles: int,
    nesting: int,
    kl_weight: float = 1.0,
    *,
    sites: Structure = PGM3D,
    fixed: dict | None = None,
):
    """The guide's trace with ``num_particles`` particles laid out as ``sites`` says; the
    sites named in ``fixed`` are held at those values."""
    fn = FixValues(fixed)(guide) if fixed else guide
    xs, ms = tile(x, mask, num_particles, sites)
    trace = poutine.trace(_particles(fn, num_particles, nesting, kl_weight, sites)).get_trace(
        xs, ms
    )
    return prune_subsample_sites(trace)


def detached_copy(trace, only: tuple[str, ...] | None = None):
    """A copy of ``trace`` whose sample values (those named in ``only``, if given) are
    detached; ``trace`` itself is untouched (``Trace.copy`` shares its site dicts)."""
    new = trace.copy()
    for name, site in trace.nodes.items():
        if site["type"] == "sample" and (only is None or name in only):
            new.nodes[name] = {**site, "value": site["value"].detach()}
    return new


def check_contract(model_tr, guide_tr, sites: Structure = PGM3D) -> None:
    """Raise a clear error if the traces break the model/guide contract (a cheap check on
    every call; :meth:`~pgm3d.contract.WrappedModel.structure` does the full one once)."""
    model_sites = _sample_sites(model_tr)
    site = model_sites.get(sites.obs)
    if site is None or not site["is_observed"]:
        raise ValueError(
            f"the model has no observed sample site {sites.obs!r}; pgm3d models observe their "
            f"data as pyro.sample({sites.obs!r}, ..., obs=x) (sites: {sorted(model_sites)})"
        )
    guide_sites = _sample_sites(guide_tr)
    missing = sorted(
        n for n, s in model_sites.items() if not s["is_observed"] and n not in guide_sites
    )
    if missing:
        raise ValueError(f"the guide does not sample the model's latent site(s) {missing}")


def log_weights(
    model,
    guide,
    x: torch.Tensor,
    mask: torch.Tensor | None,
    num_particles: int,
    nesting: int,
    *,
    kl_weight: float = 1.0,
    guide_trace=None,
    sites: Structure = PGM3D,
    fixed: dict | None = None,
) -> LogWeights:
    """Trace the guide with ``num_particles`` particles, replay the model, and return the
    per-datapoint log-densities.

    :param guide_trace: replay the model against this (e.g. detached) guide trace, traced with
        the same particles and ``kl_weight``, instead of running the guide.
    :param sites: the pair's structure (observed site, data plate, layout).
    :param fixed: latent sites held at these values in the guide and the model.
    """
    if guide_trace is None:
        guide_trace = trace_guide(
            guide, x, mask, num_particles, nesting, kl_weight, sites=sites, fixed=fixed
        )
    model_fn = FixValues(fixed)(model) if fixed else model
    model_fn = _particles(model_fn, num_particles, nesting, kl_weight, sites)
    xs, ms = tile(x, mask, num_particles, sites)
    model_trace = poutine.trace(poutine.replay(model_fn, trace=guide_trace)).get_trace(xs, ms)
    model_trace = prune_subsample_sites(model_trace)
    check_contract(model_trace, guide_trace, sites)
    model_trace.compute_log_prob()
    guide_trace.compute_log_prob()
    P, B = num_particles, x.shape[0]
    zero = x.new_zeros((P, B))
    log_lik, log_prior, log_q, g_p, g_q = zero, zero, zero, x.new_zeros(P), x.new_zeros(P)
    for site in _sample_sites(model_trace).values():
        if _data_frame(site, sites.plate) is None:
            g_p = g_p + _global(site, nesting, P, sites)
        elif site["is_observed"]:
            log_lik = log_lik + _per_datum(site, nesting, (P, B), sites)
        else:
            log_prior = log_prior + _per_datum(site, nesting, (P, B), sites)
    for site in _sample_sites(guide_trace).values():
        if _data_frame(site, sites.plate) is None:
            g_q = g_q + _global(site, nesting, P, sites)
        else:
            log_q = log_q + _per_datum(site, nesting, (P, B), sites)
    return LogWeights(log_lik, log_prior, log_q, model_trace, guide_trace, g_p, g_q)


def log_q_at(
    guide_trace, nesting: int, shape: tuple[int, int], values=None, *, sites: Structure = PGM3D
) -> torch.Tensor:
    r""":math:`\alpha \log q(z \mid x)` per datapoint at other latent values: every local guide
    site's density (its parameters still differentiable) at ``values[name]`` (in the trace's
    layout), by default the site's own value detached (:math:`\log q(\mathrm{sg}\, z)`, as
    DReG and RWS need)."""
    total = 0.0
    for name, site in _sample_sites(guide_trace).items():
        if _data_frame(site, sites.plate) is None:
            continue
        value = site["value"].detach() if values is None else values[name]
        lp = scale_and_mask(site["fn"].log_prob(value), site["scale"], site["mask"])
        total = total + _per_datum({**site, "log_prob": lp}, nesting, shape, sites)
    return total


def score_log_q(
    guide_trace, nesting: int, shape: tuple[int, int], names, *, sites: Structure = PGM3D
) -> torch.Tensor:
    r""":math:`\log q(z \mid x)` per datapoint of the local guide sites ``names`` at their
    own (sampled) values, unscaled (no KL weight, no ``poutine.scale``) and masked: the log
    density whose gradient is the score function of the distribution the samples came from
    (VIMCO's and REINFORCE's :math:`\nabla_\phi \log q(z_k \mid x)`)."""
    total = torch.zeros(shape, dtype=torch.get_default_dtype())
    for name, site in _sample_sites(guide_trace).items():
        if name not in names or _data_frame(site, sites.plate) is None:
            continue
        lp = scale_and_mask(site["fn"].log_prob(site["value"].detach()), 1.0, site["mask"])
        total = total.to(lp) + _per_datum({**site, "log_prob": lp}, nesting, shape, sites)
    return total


def with_values(trace, values: dict):
    """A copy of a guide trace with some latent values replaced (cached densities dropped),
    to replay a model against other latents."""
    new = trace.copy()
    for name, value in values.items():
        site = {k: v for k, v in trace.nodes[name].items() if "log_prob" not in k}
        site["value"] = value
        new.nodes[name] = site
    return new


def latent_values(guide_trace, sites: Structure = PGM3D) -> dict[str, torch.Tensor]:
    """The guide's sampled *local* latent values by site name, in the trace's layout."""
    return {
        n: s["value"]
        for n, s in _sample_sites(guide_trace).items()
        if _data_frame(s, sites.plate) is not None and not s["is_observed"]
    }


# ----------------------------------------------------------------- row views of latents
def _dims(name: str, site: dict | None, sites: Structure) -> tuple[int, int]:
    if name in sites.latent_dims:
        return sites.latent_dims[name]
    if site is None:
        raise KeyError(f"no layout known for latent site {name!r}")
    return site["fn"].event_dim, _data_frame(site, sites.plate).dim


def rows_of(
    value: torch.Tensor,
    name: str,
    P: int,
    B: int,
    nesting: int,
    sites: Structure = PGM3D,
    site: dict | None = None,
) -> torch.Tensor:
    """A local latent's value in the trace's layout as the row view ``(P, B, *event)``."""
    event_dim, d = _dims(name, site, sites)
    event = value.shape[value.dim() - event_dim :]
    batch_dims = nesting + (1 if sites.layout == "vectorized" else 0)
    v = value.reshape((1,) * (batch_dims + event_dim - value.dim()) + value.shape)
    at = batch_dims + d
    if sites.layout == "vectorized":
        v = v.movedim(at, 1).reshape(v.shape[0], v.shape[at], *event)
        return v.expand(P, B, *event)
    v = v.movedim(at, 0).reshape(v.shape[at], *event)
    return v.expand(P * B, *event).reshape(P, B, *event)


def to_trace(
    value: torch.Tensor,
    name: str,
    nesting: int,
    sites: Structure = PGM3D,
    site: dict | None = None,
) -> torch.Tensor:
    """The inverse of :func:`rows_of`: a row view ``(P, B, *event)`` in the trace's layout."""
    d = _dims(name, site, sites)[1]
    P, B, event = value.shape[0], value.shape[1], value.shape[2:]
    inner = (1,) * (-d - 1)
    if sites.layout == "vectorized":
        outer = (1,) * (nesting + d)
        return value.reshape(P, *outer, B, *inner, *event)
    return value.reshape(P * B, *inner, *event)


def row_latents(guide_trace, P: int, B: int, nesting: int, sites: Structure = PGM3D) -> dict:
    """Every local latent of a guide trace as a row view ``(P, B, *event)``."""
    nodes = guide_trace.nodes
    return {
        n: rows_of(v, n, P, B, nesting, sites, nodes[n])
        for n, v in latent_values(guide_trace, sites).items()
    }


def trace_with_rows(guide_trace, latents: dict, nesting: int, sites: Structure = PGM3D):
    """A copy of ``guide_trace`` holding the row-view ``latents`` (:func:`with_values`)."""
    nodes = guide_trace.nodes
    return with_values(
        guide_trace,
        {n: to_trace(v, n, nesting, sites, nodes[n]) for n, v in latents.items()},
    )


def obs_rows(value: torch.Tensor, P: int, B: int, D: int) -> torch.Tensor:
    """A value of the observed site (a draw or a mean, in either layout: particles outermost,
    then rows, then the row's entries) as ``(P, B, D)`` rows of data."""
    return value.reshape(-1, B, D).expand(P, B, D)
