r"""Log-likelihood estimation with the guide as importance proposal (Burda et al. 2016).

.. math::
    \log p(x_v) \ge \hat{\mathcal{L}}_K = \log \frac1K \sum_{k=1}^K
        \frac{p(x_v, z_k)}{q(z_k \mid x_v)}, \qquad z_k \sim q(z \mid x_v),

which tends to :math:`\log p(x_v)` as :math:`K \to \infty` and equals it for every
:math:`K` when :math:`q` is the exact posterior. The :math:`K` samples are drawn in chunks and
combined with a streaming log-sum-exp, so memory follows the chunk, not :math:`K`.

With a context :math:`c` (a conditional model) the same estimator gives the conditional
log-likelihood :math:`\log p(x_v \mid c)` (Sohn et al. 2015's CLL).

With global latents :math:`\theta` (sites outside the data plate) each row's value is one of

- ``global_latents="predictive"`` (default): :math:`\log \mathbb{E}_{q(\theta)}[p(x_v \mid
  \theta)]`, the posterior predictive density of the row under the guide's :math:`q(\theta)`:
  every particle draws its own :math:`\theta_k \sim q(\theta)` and its local latents given it,
  and the weights leave out :math:`p(\theta)/q(\theta)` (the integral is over
  :math:`q(\theta)`, not the prior). For a pair whose particles run as rows, the particles of
  one chunk share one :math:`\theta`; the estimate stays a stochastic lower bound of the same
  quantity.
- ``global_latents="point"``: :math:`\log p(x_v \mid \hat\theta)`, conditioned on the guide's
  point estimate :math:`\hat\theta` (its mean; its mode for discrete sites), as the
  completion back ends condition.

Neither is the joint evidence :math:`\log p(x_1, \dots, x_N)` of a batch, which does not split
into rows.
"""

from __future__ import annotations

import numpy as np
import torch

from pgm3d._validation import as_data, check_inputs
from pgm3d.contract import WrappedModel, as_model
from pgm3d.data.batches import is_stream, row_batches
from pgm3d.inference.globals import point_estimate
from pgm3d.inference.trace import log_weights
from pgm3d.linalg import StreamingLogSumExp
from pgm3d.missing import missing_as_nan

__all__ = ["log_likelihood"]

# elements of one chunk's (particles x rows x columns) data-sized tensors
_CHUNK_ELEMENTS = 2**22


def log_likelihood(
    model,
    x: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    context=None,
    num_samples: int = 1000,
    chunk_size: int | None = None,
    method: str = "iwae",
    guide=None,
    global_latents: str = "predictive",
) -> torch.Tensor:
    """Per-row log-likelihood of the observed entries, shape ``(B,)``; NaN for a row with no
    observed entry (it is not scored).

    :param model: any model :func:`~pgm3d.contract.as_model` accepts.
    :param x: ``(B, D)`` data (tensor or array); missing entries may hold anything. Or a
        ``Dataset``/``DataLoader`` of rows (:mod:`pgm3d.data.batches`), scored batch by batch.
    :param mask: bool ``(B, D)``, True = observed (default: NaN entries are missing).
    :param context: row-aligned conditioning inputs (a tensor or a dict of named tensors);
        the result is then :math:`\\log p(x_v \\mid c)`.
    :param int num_samples: importance samples ``K`` per row (``method="iwae"``).
    :param int chunk_size: samples drawn at once (default: about 4M data-sized elements).
    :param str method: ``"iwae"`` (importance-weighted estimate, a stochastic lower bound in
        expectation) or ``"exact"`` (the closed form of a linear-Gaussian model).
    :param guide: proposal to use instead of the model's guide.
    :param str global_latents: ``"predictive"`` or ``"point"`` (module docstring); ignored
        when the model has no global latents.
    """
    if is_stream(x):
        if mask is not None or context is not None:
            raise ValueError("with a Dataset or DataLoader, give masks and context in its rows")
        options = dict(num_samples=num_samples, chunk_size=chunk_size, method=method,
                       guide=guide, global_latents=global_latents)  # fmt: skip
        return torch.cat([log_likelihood(model, bx, bm, context=bc, **options)
                          for bx, bm, bc in row_batches(x)])  # fmt: skip
    if isinstance(x, np.ndarray):
        x = as_data(x, "x")
    if method == "exact":
        source = model.source if isinstance(model, WrappedModel) else model
        if not callable(getattr(source, "log_likelihood", None)):
            raise ValueError(
                f"method='exact' needs a closed form; {type(source).__name__} has none"
            )
        if context is not None:
            raise ValueError("method='exact' takes no context")
        mask = missing_as_nan(x, mask)
        check_inputs(source, x, mask)
        return _unscored(source.log_likelihood(x, mask), mask)
    pair = as_model(model, guide)
    mask = missing_as_nan(x, mask)
    check_inputs(pair, x, mask)
    if method != "iwae":
        raise ValueError(f"method must be 'iwae' or 'exact', got {method!r}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples (K) must be an int >= 1, got {num_samples!r}")
    if global_latents not in ("predictive", "point"):
        raise ValueError(f"global_latents must be 'predictive' or 'point', got {global_latents!r}")
    B, D = x.shape
    if chunk_size is None:
        chunk_size = max(1, min(num_samples, _CHUNK_ELEMENTS // (B * D)))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    ctx = pair.context_of(context, x)
    s = pair.check(x, mask, ctx)
    with torch.no_grad():
        bound = pair.bind(ctx)
        if s.global_latents and global_latents == "point":
            bound = bound.with_fixed(point_estimate(bound, x, mask))
        acc = StreamingLogSumExp()
        while acc.count < num_samples:
            k = min(chunk_size, num_samples - acc.count)
            lw = log_weights(bound.model, bound.guide, x, mask, k, s.nesting, sites=s)
            acc.update(lw.total)
    return _unscored(acc.log_mean_exp(), mask)


def _unscored(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """NaN for rows with no observed entry: nothing was observed, so there is nothing to score
    (a finite number there would slip into averages as if it were a measurement)."""
    if mask is None:
        return values
    return values.masked_fill(~mask.reshape(mask.shape[0], -1).any(-1), float("nan"))
