r"""Log-likelihood estimation with the guide as importance proposal (Burda et al. 2016).

.. math::
    \log p(x_v) \ge \hat{\mathcal{L}}_K = \log \frac1K \sum_{k=1}^K
        \frac{p(x_v, z_k)}{q(z_k \mid x_v)}, \qquad z_k \sim q(z \mid x_v),

which tends to :math:`\log p(x_v)` as :math:`K \to \infty` and equals it for every
:math:`K` when :math:`q` is the exact posterior. The :math:`K` samples are drawn in chunks and
combined with a streaming log-sum-exp, so memory follows the chunk, not :math:`K`.
"""

from __future__ import annotations

import torch

from pgm3d._validation import check_inputs
from pgm3d.inference._tracing import log_weights, plate_nesting
from pgm3d.linalg import StreamingLogSumExp

__all__ = ["log_likelihood"]

# elements of one chunk's (particles x rows x columns) data-sized tensors
_CHUNK_ELEMENTS = 2**22


def log_likelihood(
    model,
    x: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    num_samples: int = 1000,
    chunk_size: int | None = None,
    method: str = "iwae",
    guide=None,
) -> torch.Tensor:
    """Per-row log-likelihood of the observed entries, shape ``(B,)``.

    :param model: a pgm3d model.
    :param torch.Tensor x: ``(B, D)`` data; missing entries may hold anything.
    :param mask: bool ``(B, D)``, True = observed.
    :param int num_samples: importance samples ``K`` per row (``method="iwae"``).
    :param int chunk_size: samples drawn at once (default: about 4M data-sized elements).
    :param str method: ``"iwae"`` (importance-weighted estimate, a stochastic lower bound in
        expectation) or ``"exact"`` (the closed form of a linear-Gaussian model).
    :param guide: proposal to use instead of ``model.guide``.
    """
    check_inputs(model, x, mask)
    if method == "exact":
        if not hasattr(model, "log_likelihood"):
            raise ValueError(f"method='exact' needs a closed form; {type(model).__name__} has none")
        return model.log_likelihood(x, mask)
    if method != "iwae":
        raise ValueError(f"method must be 'iwae' or 'exact', got {method!r}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples (K) must be an int >= 1, got {num_samples!r}")
    guide = model.guide if guide is None else guide
    B, D = x.shape
    if chunk_size is None:
        chunk_size = max(1, min(num_samples, _CHUNK_ELEMENTS // (B * D)))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    with torch.no_grad():
        nesting = plate_nesting(model.model, guide, x, mask)
        acc = StreamingLogSumExp()
        while acc.count < num_samples:
            k = min(chunk_size, num_samples - acc.count)
            acc.update(log_weights(model.model, guide, x, mask, k, nesting).total)
    return acc.log_mean_exp()
