r"""The part-existence model of ShapeVAE (Nash & Williams 2017, thesis §3.4):

.. math:: p(e) = \frac{c(e) + \alpha}{N + \alpha\, 2^K},

the empirical distribution over the existence patterns ``e ∈ {0, 1}^K`` seen in ``N`` training
shapes (``c(e)`` times each), with optional Dirichlet smoothing ``α`` that gives every pattern
never seen in training the same small mass. With ``α = 0`` (the thesis's choice) an unseen
pattern has probability zero and is refused with an error naming it.
"""

from __future__ import annotations

import math

import torch
from pyro.distributions import TorchDistribution
from torch.distributions import constraints

__all__ = ["ExistenceDistribution", "existence_patterns"]


def existence_patterns(existence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows of a bool ``(N, K)`` existence matrix and how often each occurs."""
    if existence.dim() != 2 or existence.dtype != torch.bool:
        raise ValueError(
            f"existence must be a bool (N, K) tensor, got {existence.dtype} "
            f"{tuple(existence.shape)}"
        )
    if len(existence) == 0:
        raise ValueError("existence has no rows")
    patterns, counts = existence.unique(dim=0, return_counts=True)
    return patterns, counts


class ExistenceDistribution(TorchDistribution):
    """A (smoothed) empirical distribution over binary existence vectors; event shape ``(K,)``.

    :param torch.Tensor patterns: ``(n, K)`` bool, the distinct patterns seen in training.
    :param torch.Tensor counts: ``(n,)`` how often each was seen.
    :param float smoothing: Dirichlet pseudo-count ``α >= 0`` for every one of the ``2^K`` patterns.
    """

    arg_constraints = {}
    support = constraints.independent(constraints.boolean, 1)

    def __init__(self, patterns, counts, smoothing: float = 0.0, validate_args=None):
        if smoothing < 0:
            raise ValueError(f"smoothing must be >= 0, got {smoothing}")
        self.patterns, self.counts, self.smoothing = patterns.bool(), counts, float(smoothing)
        k = patterns.shape[-1]
        total = counts.sum().to(torch.float64) + self.smoothing * 2.0**k
        self._log_seen = ((counts.double() + self.smoothing) / total).log()
        self._log_unseen = (
            math.log(self.smoothing / float(total)) if self.smoothing > 0 else -math.inf
        )
        super().__init__(torch.Size(), torch.Size([k]), validate_args=validate_args)

    def pattern_index(self, value: torch.Tensor) -> torch.Tensor:
        """Index of each row's pattern, -1 when unseen."""
        v = value.bool().unsqueeze(-2)
        hit = (v == self.patterns.to(value.device)).all(-1)  # (..., n)
        return torch.where(hit.any(-1), hit.float().argmax(-1), -1)

    def check_seen(self, value: torch.Tensor) -> None:
        """Raise if a row has a pattern of probability zero (unseen, no smoothing)."""
        idx = self.pattern_index(value)
        if self.smoothing == 0 and (idx < 0).any():
            bad = value.reshape(-1, value.shape[-1])[(idx < 0).reshape(-1)][0].bool().int().tolist()
            raise ValueError(
                f"existence pattern {bad} never occurs in the training data, so p(e) = 0; pass "
                "existence_smoothing > 0 to give unseen patterns probability"
            )

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        self.check_seen(value)
        idx = self.pattern_index(value)
        seen = self._log_seen.to(device=value.device, dtype=value.dtype)
        out = seen[idx.clamp_min(0)]
        return torch.where(idx >= 0, out, torch.full_like(out, self._log_unseen)).expand(
            value.shape[:-1]
        )

    def sample(self, sample_shape=(), generator: torch.Generator | None = None):
        """Draw patterns; unseen ones (smoothing only) are drawn uniformly among the unseen."""
        n = int(torch.Size(sample_shape).numel())
        k = self.patterns.shape[-1]
        probs = torch.cat([self._log_seen.exp(), self._log_seen.new_tensor([0.0])])
        probs[-1] = (1 - probs[:-1].sum()).clamp_min(0)
        pick = torch.multinomial(probs, n, replacement=True, generator=generator)
        out = self.patterns[pick.clamp_max(len(self.patterns) - 1)].clone()
        for i in (pick == len(self.patterns)).nonzero().flatten().tolist():
            while True:  # rejection: uniform over all patterns until an unseen one
                draw_on = generator.device if generator is not None else self.patterns.device
                cand = (torch.rand(k, generator=generator, device=draw_on) < 0.5).to(out.device)
                if not (cand == self.patterns).all(-1).any():
                    out[i] = cand
                    break
        return out.reshape(*torch.Size(sample_shape), k)
