r"""Pyro effect handlers through which pgm3d does its part of the model contract.

Each is a :class:`~pyro.poutine.messenger.Messenger` applied around a user's model or guide, so
the user's code never has to know about missing data, minibatch scaling or KL weights:

- :class:`MaskObserved` masks the observed site's log-density *per entry*, under its event
  dimensions, so a model that never heard of masks marginalises the missing entries;
- :class:`LocalScale` multiplies the sites inside the data plate by :math:`N/B` and leaves
  the global sites (outside it) alone;
- :class:`LatentScale` multiplies every latent site by the KL weight :math:`\alpha`;
- :class:`FixValues` holds named latent sites at given values (the global latents shared by all
  particles of a step, or their point estimate during completion);
- :class:`SumLogProb` adds up the scaled and masked log-densities of a run's sample sites
  without recording a trace (the ELBO's lean path).
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from pyro.distributions.util import scale_and_mask
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample

__all__ = [
    "FixValues",
    "LatentScale",
    "LocalScale",
    "MaskObserved",
    "NotPerEntry",
    "SumLogProb",
    "is_deterministic",
    "mask_per_entry",
]


class NotPerEntry(ValueError):
    """The observed site has no per-entry structure the library could mask."""


def is_deterministic(site: dict) -> bool:
    """``pyro.deterministic`` records an observed ``Delta`` site; it is no observation."""
    return bool(site.get("infer", {}).get("_deterministic", False))


def _check_layout(value: torch.Tensor, mask: torch.Tensor, site: str) -> torch.Tensor:
    """The ``(B, D)`` mask reshaped to the observed value ``(B, ...)``, entry for entry."""
    if value.dim() == 0 or value.shape[0] != mask.shape[0] or value[0].numel() != mask[0].numel():
        raise NotPerEntry(
            f"the observed site {site!r} holds a value of shape {tuple(value.shape)}, not the "
            f"data's {tuple(mask.shape)} entry for entry, so pgm3d cannot mask its missing "
            "entries; pass complete rows (mask=None), or observe the data argument itself "
            "(reshaped if you like) so each entry of the site is one entry of the data"
        )
    return mask.reshape(value.shape)


def mask_per_entry(fn, mask: torch.Tensor, value: torch.Tensor, site: str = "x"):
    r"""``fn`` with the log-density of each entry where ``mask`` is False set to zero.

    Independent wrappers are peeled off, the factorised base distribution is masked over its
    batch dimensions (``MaskedDistribution``), and the wrappers are put back, so
    :math:`\log p(x_v \mid z) = \sum_{d \in v} \log p(x_d \mid z)`: the missing entries are
    marginalised exactly. ``fn`` keeps its batch and event shapes.

    :param mask: bool ``(B, D)``, True = observed.
    :param value: the site's observed value ``(B, ...)`` with ``D`` entries per row.
    :raises NotPerEntry: the value is not the data entry for entry, or the distribution
        couples entries (``MultivariateNormal``, ``OneHotCategorical``, ...).
    """
    m = _check_layout(value, mask, site)
    base, dims = fn, 0
    while isinstance(base, torch.distributions.Independent):
        dims += base.reinterpreted_batch_ndims
        base = base.base_dist
    if base.event_shape != ():
        raise NotPerEntry(
            f"the observed site {site!r} has a {type(base).__name__} likelihood, whose entries "
            "are coupled, so its missing entries cannot be masked out one by one; use a "
            "factorised likelihood (e.g. Normal(...).to_event(1)) or pass complete rows"
        )
    masked = dist.MaskedDistribution(base, m)
    return dist.Independent(masked, dims) if dims else masked


class MaskObserved(Messenger):
    """Mask the observed site ``site`` per entry with ``mask`` (see :func:`mask_per_entry`).

    :param str site: name of the site that observes the data.
    :param torch.Tensor mask: bool ``(B, D)``, True = observed.
    """

    def __init__(self, site: str, mask: torch.Tensor):
        super().__init__()
        self.site, self.mask = site, mask

    def _process_message(self, msg):
        if msg["type"] == "sample" and msg["name"] == self.site and msg["is_observed"]:
            msg["fn"] = mask_per_entry(msg["fn"], self.mask, msg["value"], self.site)


class LocalScale(Messenger):
    """Multiply the log-density of every site inside the plate ``plate`` by ``scale``.

    With ``scale = N / B`` on a minibatch of ``B`` of ``N`` rows, the local terms estimate the
    whole data's sum while the global sites (outside the plate) count once, as in the bound
    :math:`\\log p(\\theta) - \\log q(\\theta) + \\sum_{n=1}^N \\mathcal{L}_n(\\theta)`.
    """

    def __init__(self, plate: str, scale: float):
        super().__init__()
        self.plate, self.scale = plate, scale

    def _process_message(self, msg):
        if msg["type"] == "sample" and any(f.name == self.plate for f in msg["cond_indep_stack"]):
            msg["scale"] = msg["scale"] * self.scale


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


class FixValues(Messenger):
    """Hold the latent sites named in ``values`` at those values, as ``poutine.replay`` does for
    a whole trace: the sites stay latent (their densities are still scored), but nothing is
    drawn for them.

    :param dict values: site name -> value (broadcast against the site's batch shape).
    """

    def __init__(self, values: dict[str, torch.Tensor]):
        super().__init__()
        self.values = values

    def _process_message(self, msg):
        if msg["type"] == "sample" and msg["name"] in self.values and not msg["is_observed"]:
            msg["value"] = self.values[msg["name"]]
            msg["done"] = True


class SumLogProb(Messenger):
    r"""Add up :math:`\sum_{\text{sites}} \operatorname{sum}(\text{scale} \cdot
    \log p(\text{value}))` over the sample sites of one run, masked, as
    ``Trace.log_prob_sum`` does — but as the run goes, without recording a trace.

    Run the guide under ``SumLogProb(...)`` (it keeps each latent's value in ``values``), then
    the model under ``SumLogProb(..., replay=values)`` (its latents take the guide's values,
    as ``poutine.replay`` gives them): ``model.total - guide.total`` is the single-particle
    ELBO of Pyro's ``Trace_ELBO`` for a guide whose sites are all reparameterised. The sites
    inside the plate ``plate`` are multiplied by ``scale`` and the latent sites by ``alpha``
    (what :class:`LocalScale` and :class:`LatentScale` do, here without two more handlers
    on the stack); plate subsample sites are not scored, as Pyro prunes them.
    """

    def __init__(self, plate: str, scale: float = 1.0, alpha: float = 1.0, replay=None):
        super().__init__()
        self.plate, self.scale, self.alpha = plate, scale, alpha
        self.replay = replay
        self.values: dict[str, torch.Tensor] = {}
        self.total = 0.0

    def _process_message(self, msg):
        if (self.replay is not None and msg["type"] == "sample" and not msg["is_observed"]
                and msg["name"] in self.replay):  # fmt: skip
            msg["value"] = self.replay[msg["name"]]
            msg["done"] = True

    def _postprocess_message(self, msg):
        if msg["type"] != "sample" or site_is_subsample(msg):
            return
        scale = msg["scale"]
        if not msg["is_observed"]:
            scale = scale * self.alpha
            if self.replay is None:
                self.values[msg["name"]] = msg["value"]
        if self.scale != 1.0 and any(f.name == self.plate for f in msg["cond_indep_stack"]):
            scale = scale * self.scale
        log_p = msg["fn"].log_prob(msg["value"], *msg["args"], **msg["kwargs"])
        self.total = self.total + scale_and_mask(log_p, scale, msg["mask"]).sum()
