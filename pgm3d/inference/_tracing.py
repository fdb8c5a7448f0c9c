r"""Per-datapoint log-weights of any model/guide pair that follows pgm3d's contract.

The contract (DESIGN.md): ``model(x, mask)`` and ``guide(x, mask)`` put every local site inside
``pyro.plate("data", B)``, the observation is the site ``"x"``, and the guide samples every
latent site of the model. Running the guide vectorised over an outermost ``particles`` plate
and replaying the model against it gives, for particle ``k`` and row ``n``,

.. math::
    \log w_{kn} = \log p(x_n \mid z_{kn}) + \alpha\,[\log p(z_{kn}) - \log q(z_{kn} \mid x_n)],

split into its three parts, from which the ELBO, IWAE, DReG, RWS, importance sampling and the
MCMC back ends are all built. ``alpha`` is the KL weight of thesis eq. 3.5 (1 = the true
posterior).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import pyro.poutine as poutine
import torch
from pyro.distributions.util import scale_and_mask
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import prune_subsample_sites

__all__ = [
    "DATA_PLATE",
    "LatentScale",
    "LogWeights",
    "check_contract",
    "log_weights",
    "object_plates",
    "plate_nesting",
]

DATA_PLATE = "data"
PARTICLES = "particles"


class LatentScale(Messenger):
    """Multiply the log-density of every *latent* sample site by ``scale`` (observed sites are
    left alone): the KL weight :math:`\\alpha` of thesis eq. 3.5, applied to both
    :math:`\\log p(z)` in the model and :math:`\\log q(z)` in the guide."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def _process_message(self, msg):
        if msg["type"] == "sample" and not msg["is_observed"]:
            msg["scale"] = msg["scale"] * self.scale


def _sample_sites(trace):
    return {n: s for n, s in trace.nodes.items() if s["type"] == "sample"}


def plate_nesting(model, guide, x, mask) -> int:
    """Deepest plate nesting of the model and guide (run once, with nothing recorded and no
    random numbers consumed, so a resumed training run draws what an uninterrupted one does)."""
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


def object_plates(guide, x, mask) -> dict[str, list[str]]:
    """Latent sites of ``guide`` that lie in vectorised plates besides ``"data"`` (such as the
    MVAE's ``"objects"``), with those plates' names; traced on one row, with nothing recorded
    and no random numbers consumed."""
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), poutine.block():
        tr = poutine.trace(guide).get_trace(x[:1], None if mask is None else mask[:1])
    found = {}
    for name, site in _sample_sites(prune_subsample_sites(tr)).items():
        plates = [f.name for f in site["cond_indep_stack"] if f.vectorized and f.name != DATA_PLATE]
        if plates and not site["is_observed"]:
            found[name] = plates
    return found


def check_contract(model_tr, guide_tr, observed: str = "x") -> None:
    """Raise a clear error if the traces break the model/guide contract."""
    model_sites = _sample_sites(model_tr)
    if observed not in model_sites or not model_sites[observed]["is_observed"]:
        raise ValueError(
            f"the model has no observed sample site {observed!r}; pgm3d models observe their "
            f"data as pyro.sample({observed!r}, ..., obs=x) (sites: {sorted(model_sites)})"
        )
    guide_sites = _sample_sites(guide_tr)
    missing = sorted(
        n for n, s in model_sites.items() if not s["is_observed"] and n not in guide_sites
    )
    if missing:
        raise ValueError(f"the guide does not sample the model's latent site(s) {missing}")
    for name, site in {**model_sites, **guide_sites}.items():
        if not any(f.name == DATA_PLATE for f in site["cond_indep_stack"]):
            raise ValueError(
                f"site {name!r} is not inside pyro.plate({DATA_PLATE!r}, ...); per-datapoint "
                "bounds and completions need every sample site to be local to a data row"
            )


def _per_datum(site, nesting: int, shape: tuple[int, int]) -> torch.Tensor:
    """A site's (scaled, masked) log-density summed to ``(particles, rows)``."""
    lp = site["log_prob"]
    if not torch.is_tensor(lp):
        return torch.full(shape, float(lp))
    ndim = nesting + 1
    lp = lp.reshape((1,) * (ndim - lp.dim()) + lp.shape)
    data_dim = next(f.dim for f in site["cond_indep_stack"] if f.name == DATA_PLATE)
    keep = (0, ndim + data_dim)
    others = [d for d in range(ndim) if d not in keep]
    if others:
        lp = lp.sum(others, keepdim=True)
    return lp.reshape(lp.shape[keep[0]], lp.shape[keep[1]]).expand(shape)


@dataclass
class LogWeights:
    """Per-datapoint log-densities, each ``(P, B)`` for ``P`` particles and ``B`` rows.

    :ivar log_lik: :math:`\\log p(x \\mid z)` of the observed site(s).
    :ivar log_prior: :math:`\\alpha \\log p(z)` of the model's latent sites.
    :ivar log_q: :math:`\\alpha \\log q(z \\mid x)` of the guide's sites.
    :ivar model_trace: the replayed model trace.
    :ivar guide_trace: the guide trace (latent values ``(P, B, ...)``).
    """

    log_lik: torch.Tensor
    log_prior: torch.Tensor
    log_q: torch.Tensor
    model_trace: object
    guide_trace: object

    @property
    def total(self) -> torch.Tensor:
        """:math:`\\log w = \\log p(x \\mid z) + \\alpha[\\log p(z) - \\log q(z \\mid x)]`."""
        return self.log_lik + self.log_prior - self.log_q


def _particles(fn, num_particles: int, nesting: int, kl_weight: float):
    fn = pyro.plate(PARTICLES, num_particles, dim=-(nesting + 1))(fn)
    return LatentScale(kl_weight)(fn) if kl_weight != 1.0 else fn


def trace_guide(guide, x, mask, num_particles: int, nesting: int, kl_weight: float = 1.0):
    """The guide's trace with ``num_particles`` vectorised particles at dim ``-(nesting+1)``."""
    trace = poutine.trace(_particles(guide, num_particles, nesting, kl_weight)).get_trace(x, mask)
    return prune_subsample_sites(trace)


def detached_copy(trace):
    """A copy of ``trace`` whose sample values are detached; ``trace`` itself is untouched
    (``Trace.copy`` shares its site dicts, so ``detach_`` on it would detach both)."""
    new = trace.copy()
    for name, site in trace.nodes.items():
        if site["type"] == "sample":
            new.nodes[name] = {**site, "value": site["value"].detach()}
    return new


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
) -> LogWeights:
    """Trace the guide with ``num_particles`` vectorised particles, replay the model, and
    return the per-datapoint log-densities.

    :param guide_trace: replay the model against this (e.g. detached) guide trace, traced with
        the same particles and ``kl_weight``, instead of running the guide.
    """
    if guide_trace is None:
        guide_trace = trace_guide(guide, x, mask, num_particles, nesting, kl_weight)
    model_fn = _particles(model, num_particles, nesting, kl_weight)
    model_trace = poutine.trace(poutine.replay(model_fn, trace=guide_trace)).get_trace(x, mask)
    model_trace = prune_subsample_sites(model_trace)
    check_contract(model_trace, guide_trace)
    model_trace.compute_log_prob()
    guide_trace.compute_log_prob()
    shape = (num_particles, x.shape[0])
    zero = x.new_zeros(shape)
    log_lik, log_prior, log_q = zero, zero, zero
    for site in _sample_sites(model_trace).values():
        if site["is_observed"]:
            log_lik = log_lik + _per_datum(site, nesting, shape)
        else:
            log_prior = log_prior + _per_datum(site, nesting, shape)
    for site in _sample_sites(guide_trace).values():
        log_q = log_q + _per_datum(site, nesting, shape)
    return LogWeights(log_lik, log_prior, log_q, model_trace, guide_trace)


def log_q_at(guide_trace, nesting: int, shape: tuple[int, int], values=None) -> torch.Tensor:
    r""":math:`\alpha \log q(z \mid x)` per datapoint at other latent values: every guide
    site's density (its parameters still differentiable) at ``values[name]``, by default the
    site's own value detached (:math:`\log q(\mathrm{sg}\, z)`, as DReG and RWS need)."""
    total = 0.0
    for name, site in _sample_sites(guide_trace).items():
        value = site["value"].detach() if values is None else values[name]
        lp = scale_and_mask(site["fn"].log_prob(value), site["scale"], site["mask"])
        total = total + _per_datum({**site, "log_prob": lp}, nesting, shape)
    return total


def with_values(trace, values: dict):
    """A copy of a guide trace with its latent values replaced (cached densities dropped), to
    replay a model against other latents."""
    new = trace.copy()
    for name, value in values.items():
        site = {k: v for k, v in trace.nodes[name].items() if "log_prob" not in k}
        site["value"] = value
        new.nodes[name] = site
    return new


def latent_values(guide_trace) -> dict[str, torch.Tensor]:
    """The guide's sampled latent values by site name."""
    return {n: s["value"] for n, s in _sample_sites(guide_trace).items()}
