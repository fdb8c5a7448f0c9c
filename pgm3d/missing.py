"""Missing entries: the arithmetic of observation masks (``True`` = observed).

NaN means missing (:func:`missing_as_nan`); a model never sees a missing entry's value
(:func:`clean_missing` zeroes it before any arithmetic, so a NaN under the mask cannot poison a
gradient), and a completion puts values only where entries are missing
(:func:`fill_where_missing`). The checks of observed values are in :mod:`pgm3d._validation`.
"""

from __future__ import annotations

import torch

__all__ = ["clean_missing", "fill_where_missing", "missing_as_nan"]


def missing_as_nan(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
    """NaN means missing: without a mask, the entries of ``x`` that are NaN are the missing
    ones (``None`` if there are none). A given mask is returned as it is — NaN where it says
    observed is then an error (:func:`check_observed_finite`), never a guess."""
    if mask is None and isinstance(x, torch.Tensor) and x.is_floating_point():
        missing = x.isnan()
        if bool(missing.any()):
            return ~missing
    return mask


def clean_missing(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Return ``x`` with missing entries replaced by zero.

    Masking a likelihood does not stop a NaN held under the mask from poisoning gradients
    (``0 * nan = nan``), so missing entries are overwritten before any arithmetic. Observed
    entries must be finite (see :func:`check_observed_finite`); they pass through unchanged.
    """
    if mask is None:
        return x
    # two cheap passes; faster on CPU than torch.where with a bool mask
    return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0) * mask


def fill_where_missing(x: torch.Tensor, mask: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``torch.where(mask, x, values)`` for finite ``values``; ``x`` may hold NaN where missing.

    Observed entries come back bit for bit (``x + 0``) and missing ones are ``0 + values``;
    on CPU this is several times faster than ``torch.where`` with a bool mask.
    """
    return clean_missing(x, mask) + values * ~mask
