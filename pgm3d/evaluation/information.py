r"""Mutual information between a network's discrete inputs and a layer's representation
(thesis ch. 6, §6.3.4 and §6.4.1).

**Inversion-model bound** (eqs. 6.14–6.19). For discrete inputs :math:`x` and any model
:math:`p_\theta(x \mid h)`, the conditional cross entropy bounds the conditional entropy from
above, so

.. math::
    I(x; h) = H(x) - H(x \mid h) \ge H(x) - H\big(p(x \mid h), p_\theta(x \mid h)\big),

estimated on held-out pairs by :func:`negative_cross_entropy` (the thesis's NCE,
:math:`\frac{1}{|T|}\sum_T \log p_\theta(x \mid h)`). :math:`H(x)` is exact where the input
distribution is known (:func:`discrete_entropy`), or estimated from above by an unconditional
model's cross entropy (then the difference is an estimate, not a bound).

**The estimators the chapter reviews**, on noisy activations :math:`h_\epsilon = h + \epsilon`,
:math:`\epsilon \sim \mathcal N(0, \sigma^2 I)`:

- the KDE estimate of Kolchinsky & Tracey (2017), as Saxe et al. (2018) use it (eq. 6.9):
  :math:`\hat I = -\frac1N \sum_i \log \frac1N \sum_j \exp\big(-\lVert h_i - h_j\rVert^2 /
  2\sigma^2\big)` (:func:`kde_mutual_information`);
- Kraskov et al. (2004)'s nearest-neighbour entropy (eqs. 6.10–6.11), :math:`\hat h =
  \frac{D}{N}\sum_i \log(r_i + \epsilon) + \frac D2 \log\pi - \log\Gamma(\frac D2 + 1) +
  \psi(N) - \psi(k)`, and from it :math:`\hat I = \hat h(h_\epsilon) - h(\epsilon)`
  (:func:`kraskov_entropy`, :func:`kraskov_mutual_information`).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "discrete_entropy",
    "kde_mutual_information",
    "kraskov_entropy",
    "kraskov_mutual_information",
    "negative_cross_entropy",
]


def negative_cross_entropy(model, x: torch.Tensor, h=None, *, batch_size: int = 512) -> float:
    """The thesis's NCE (eq. 6.19): mean :math:`\\log p_\\theta(x \\mid h)` over rows, nats.

    :param model: an inversion model with ``exact_log_likelihood(x, h=h)`` (a
        :class:`~pgm3d.models.PixelCNN`; ``h=None`` for an unconditional one).
    """
    total, rows = 0.0, x.shape[0]
    with torch.no_grad():
        for i in range(0, rows, batch_size):
            hh = None if h is None else h[i : i + batch_size]
            total += float(model.exact_log_likelihood(x[i : i + batch_size], h=hh).sum())
    return total / rows


def discrete_entropy(values: torch.Tensor, weights: torch.Tensor | None = None) -> float:
    """Entropy in nats of the distribution of the rows of ``values`` (each row one outcome,
    equal rows one value), with optional probabilities ``weights`` per row (uniform if
    ``None``): e.g. :math:`H(h)` of a deterministic layer over an enumerated input set."""
    flat = values.reshape(values.shape[0], -1)
    _, inverse = torch.unique(flat, dim=0, return_inverse=True)
    w = (torch.full((flat.shape[0],), 1.0 / flat.shape[0], dtype=torch.float64)
         if weights is None else torch.as_tensor(weights, dtype=torch.float64))  # fmt: skip
    p = torch.zeros(int(inverse.max()) + 1, dtype=torch.float64).index_add_(0, inverse.cpu(), w)
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())


def _flat(h: torch.Tensor) -> torch.Tensor:
    return h.reshape(h.shape[0], -1).double()


def kde_mutual_information(h: torch.Tensor, noise: float) -> float:
    """Kolchinsky & Tracey's KDE upper bound on :math:`I(x; h + \\epsilon)` in nats, from
    ``N`` activations ``h (N, ...)`` (one per input, the inputs equally likely) and the noise
    scale :math:`\\sigma`; at most :math:`\\log N`."""
    if noise <= 0:
        raise ValueError(f"noise must be > 0, got {noise}")
    f = _flat(h)
    d2 = torch.cdist(f, f).pow(2)
    n = f.shape[0]
    return float(-(torch.logsumexp(-d2 / (2 * noise**2), 1) - math.log(n)).mean())


def kraskov_entropy(h: torch.Tensor, k: int = 1, eps: float = 0.0) -> float:
    """Kraskov et al.'s k-nearest-neighbour estimate of the differential entropy of the rows
    of ``h`` (eq. 6.10), nats; ``eps`` is the small constant added to each distance."""
    f = _flat(h)
    n, d = f.shape
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, N - 1] = [1, {n - 1}], got {k}")
    dist = torch.cdist(f, f)
    dist.fill_diagonal_(math.inf)
    r = dist.kthvalue(k, dim=1).values
    const = d / 2 * math.log(math.pi) - math.lgamma(d / 2 + 1)
    digamma = torch.special.digamma(torch.tensor([float(n), float(k)], dtype=torch.float64))
    return float(d * (r + eps).log().mean() + const + digamma[0] - digamma[1])


def kraskov_mutual_information(h: torch.Tensor, noise: float, *, k: int = 1,
                               generator: torch.Generator | None = None) -> float:  # fmt: skip
    """Saxe et al.'s estimate :math:`\\hat h(h + \\epsilon) - h(\\epsilon)` with
    :math:`\\epsilon \\sim \\mathcal N(0, \\sigma^2 I)` drawn once per row, nats."""
    if noise <= 0:
        raise ValueError(f"noise must be > 0, got {noise}")
    f = _flat(h)
    d = f.shape[1]
    noisy = f + noise * torch.randn(f.shape, generator=generator, dtype=f.dtype).to(f.device)
    return kraskov_entropy(noisy, k) - d / 2 * math.log(2 * math.pi * math.e * noise**2)
