r"""Imputation by a VAE with arbitrary conditioning (Ivanov et al. 2019): the model's own
completion, for every mask it can take.

With :math:`b` the missing entries, draw :math:`z_s \sim p_\psi(z \mid x_o, b)` from the prior
network and fill the missing entries with the mean over draws of
:math:`\mathbb{E}[x_b \mid z_s, x_o, b]` (``mean=True``, the paper's imputation by the mean) or
of draws :math:`x_b \sim p_\theta(x_b \mid z_s, x_o, b)` (``mean=False``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from pgm3d.contract import WrappedModel
from pgm3d.inference.base import COMPLETION_METHODS, require
from pgm3d.inference.samples import SampleCompletion
from pgm3d.missing import fill_where_missing
from pgm3d.models.base import draw_observations

__all__ = ["VAEACCompletion", "vaeac"]


@dataclass
class VAEACCompletion(SampleCompletion):
    """A VAEAC completion; :ivar notes: what the result should be read with (masks of a kind
    the model was not trained on)."""

    notes: tuple[str, ...] = ()


def _mask_notes(model, mask: torch.Tensor) -> tuple[str, ...]:
    trained = getattr(model, "trained_masks", None)
    if trained is None:
        return ("the VAEAC was not trained through vaeac.masks(): the masks it saw are unknown",)
    kind, p = trained
    rate = float((~mask).double().mean())
    if abs(rate - p) > 0.25:
        return (
            f"the VAEAC was trained on {kind} masks hiding {p:.0%} of entries; these hide "
            f"{rate:.0%}: a mask type it was never trained on",
        )
    return ()


@COMPLETION_METHODS.register("vaeac", kind="sampler", unit="{num_samples} draws")
def vaeac(model, x, mask, *, num_samples: int = 25, mean: bool = True, seed: int = 0):
    """Fill the missing entries (``mask`` False) of ``x (B, D)`` from the VAEAC's prior
    network; warns (and says so in ``notes``) when the masks differ from the training masks.

    :returns: a :class:`VAEACCompletion` with ``samples["z"]`` ``(1, S, B, K)`` and
        ``samples["x"]`` ``(1, S, B, D)``, ``z`` the prior network's Gaussian.
    """
    source = model.source if isinstance(model, WrappedModel) else model
    require(source, "vaeac", "prior", "decode", "trained_masks")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    notes = _mask_notes(source, mask)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=3)
    g = torch.Generator(device="cpu").manual_seed(seed)
    training = source.training
    source.eval()
    try:
        with torch.no_grad():
            pz, skips = source.prior(x, mask, ~mask)
            loc, scale = pz.base_dist.loc, pz.base_dist.scale
            eps = torch.randn((num_samples, *loc.shape), generator=g, dtype=loc.dtype)
            z = loc + scale * eps.to(loc.device)
            draws = draw_observations(source.decode(z, skips), mean=mean, generator=g)
    finally:
        source.train(training)
    filled = fill_where_missing(x, mask, draws.mean(0))
    completed = torch.stack([fill_where_missing(x, mask, d) for d in draws])
    return VAEACCompletion(
        z=pz, x=filled, mask=mask, method="vaeac",
        samples={"z": z[None], "x": completed[None]}, notes=notes,
    )  # fmt: skip
