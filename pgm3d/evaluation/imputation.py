"""Imputation error: how well filled-in entries match the truth."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pgm3d._validation import check_data, check_mask

__all__ = ["ImputationError", "imputation_mse"]


@dataclass
class ImputationError:
    """Mean squared error of imputed entries with its standard error across rows.

    :ivar float mean: mean over rows of each row's MSE on its missing entries.
    :ivar float stderr: standard error of that mean, ``std(per_row) / sqrt(n_rows)``.
    :ivar torch.Tensor per_row: ``(B,)`` per-row MSE; NaN for rows with nothing missing.
    :ivar int n_rows: rows with at least one missing entry (those averaged).
    """

    mean: float
    stderr: float
    per_row: torch.Tensor
    n_rows: int

    def scaled(self, factor: float) -> tuple[float, float]:
        """``(mean, stderr)`` multiplied by ``factor`` (the thesis reports MSE x 10^2)."""
        return self.mean * factor, self.stderr * factor


def imputation_mse(
    x_true: torch.Tensor, x_hat: torch.Tensor, mask: torch.Tensor
) -> ImputationError:
    r"""Per-row mean squared error on the missing entries, averaged over rows.

    .. math:: \mathrm{MSE}_i = \frac{1}{|m_i|}\sum_{d \in m_i} (\hat x_{id} - x_{id})^2,
              \qquad \overline{\mathrm{MSE}} \pm \frac{s}{\sqrt{n}}

    as in the thesis's Tables 4.1–4.2; rows with nothing missing are left out.

    :param x_true: ``(B, D)`` complete data.
    :param x_hat: ``(B, D)`` imputed data.
    :param mask: bool ``(B, D)``, True = observed (so ``~mask`` is scored).
    """
    check_data(x_true, "x_true")
    check_data(x_hat, "x_hat")
    if x_hat.shape != x_true.shape:
        raise ValueError(f"x_hat has shape {tuple(x_hat.shape)}, x_true {tuple(x_true.shape)}")
    check_mask(mask, x_true)
    missing = ~mask
    counts = missing.sum(1)
    sq = torch.where(
        missing, (x_hat - x_true).pow(2), torch.zeros((), dtype=x_hat.dtype, device=x_hat.device)
    )
    per_row = sq.sum(1) / counts.clamp_min(1)
    per_row = torch.where(counts > 0, per_row, torch.full_like(per_row, math.nan))
    scored = per_row[counts > 0].detach()
    n = int(scored.numel())
    if n == 0:
        raise ValueError("mask has no missing entries to score")
    stderr = float(scored.std() / math.sqrt(n)) if n > 1 else math.nan
    return ImputationError(float(scored.mean()), stderr, per_row.detach(), n)
