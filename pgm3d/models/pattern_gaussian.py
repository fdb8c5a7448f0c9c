r"""The per-pattern diagonal Gaussian baseline of ShapeVAE's evaluation (thesis eq. 3.6):

.. math::
    p(x, e) = p(e) \prod_{d:\ \text{part}(d) \in e} \mathcal{N}(x_d;\ \mu_{e,d},\ \sigma^2_{e,d}),

one independent Gaussian per entry and existence pattern ``e``, fitted by maximum likelihood to
the training shapes with that pattern (variances floored by ``σ²_min``), and ``p(e)`` the same
empirical pattern distribution as ShapeVAE's. Its log-likelihood is exact, and so is every
marginal: missing entries simply drop out of the product.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pgm3d.models.base import Model, check_n
from pgm3d.models.part_rows import PartRows

__all__ = ["PatternGaussian"]


class PatternGaussian(PartRows, Model, nn.Module):
    """Diagonal Gaussian per existence pattern; rows as :class:`~pgm3d.models.ShapeVAE`'s.

    :param part_points: points per part. :param existence: ``(N, K)`` bool training existences.
    :param bool normals: rows hold normals too. :param float min_variance: variance floor.
    :param float existence_smoothing: Dirichlet pseudo-count of ``p(e)``.

    Fit with :meth:`fit` (rows) or :meth:`fit_shapes` (a ShapeSet).
    """

    trained_by = "closed-form"
    # not a Pyro model: its conditionals are the pattern means, exact and needing no inference
    completion_methods = ("pattern-mean",)

    def __init__(
        self, part_points, existence, *, normals=True, min_variance=1e-3, existence_smoothing=0.0
    ):
        super().__init__()
        if min_variance <= 0:
            raise ValueError(f"min_variance must be > 0, got {min_variance}")
        self.init_layout(part_points, existence, normals, existence_smoothing)
        self.min_variance = min_variance
        n = len(self.patterns)
        self.register_buffer("loc", torch.zeros(n, self.point_dim))
        self.register_buffer("variance", torch.ones(n, self.point_dim))
        self.fitted = False

    @classmethod
    def from_data(cls, data, **_) -> PatternGaussian:
        """Fitted to a ShapeSet in float64 (:meth:`fit_shapes`)."""
        return cls.fit_shapes(data.to(dtype=torch.float64))

    @classmethod
    def fit_shapes(cls, shapes, *, normals: bool = True, **kwargs) -> PatternGaussian:
        """Construct from a ShapeSet and fit to it (float64 statistics, default-dtype buffers)."""
        model = cls.from_shapes(shapes, normals=normals, **kwargs)
        x, mask = model.data(shapes)
        return model.fit(x, mask)

    def fit(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> PatternGaussian:
        """Maximum-likelihood means and variances per pattern from rows ``x (N, D + K)``.

        :raises ValueError: a training pattern with an entry never observed.
        """
        self.to(x.device, x.dtype).check_rows(x, mask)
        points, e = self.split(x)
        observed = (
            self.entry_mask(e) if mask is None else self.entry_mask(e) & mask[:, : self.point_dim]
        )
        idx = self.existence_distribution().pattern_index(e)
        for k, pattern in enumerate(self.patterns):
            rows = idx == k
            present = self.entry_mask(pattern)
            w = observed[rows].to(torch.float64)
            count = w.sum(0)
            if rows.any() and (count[present] == 0).any():
                raise ValueError(
                    f"pattern {pattern.int().tolist()}: some present entries are never observed"
                )
            safe = count.clamp_min(1)
            mean = (w * points[rows].double()).sum(0) / safe
            var = (w * (points[rows].double() - mean) ** 2).sum(0) / safe
            self.loc[k] = torch.where(present, mean, 0.0).to(self.loc)
            self.variance[k] = (torch.where(present, var, 0.0) + self.min_variance).to(
                self.variance
            )
        self.fitted = True
        return self

    def log_likelihood(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Exact ``log p(x_v, e)`` per row, ``(B,)``, over observed entries of present parts."""
        if not self.fitted:
            raise RuntimeError("fit the model first (PatternGaussian.fit or fit_shapes)")
        self.check_rows(x, mask)
        points, e = self.split(x)
        prior = self.existence_distribution()
        idx = prior.pattern_index(e)
        if (idx < 0).any():
            bad = e[idx < 0][0].int().tolist()
            raise ValueError(f"pattern {bad} has no fitted Gaussian (never seen in training)")
        keep = (
            self.entry_mask(e) if mask is None else self.entry_mask(e) & mask[:, : self.point_dim]
        )
        loc, var = self.loc[idx], self.variance[idx]
        log_n = -0.5 * ((points - loc) ** 2 / var + var.log() + math.log(2 * math.pi))
        return prior.log_prob(e) + torch.where(keep, log_n, 0.0).sum(-1)

    def extra_state(self) -> dict:
        return {"fitted": bool(self.fitted)}

    def load_extra_state(self, state: dict) -> None:
        self.fitted = bool(state.get("fitted", False))

    def exact_log_likelihood(self, x, mask, existence=None) -> torch.Tensor:
        """The closed form :meth:`log_likelihood`."""
        return self.log_likelihood(x, mask)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        mean: bool = False,
        return_latents: bool = False,
    ) -> torch.Tensor:
        """``n`` rows ``[x, e]`` from the model (the pattern means with ``mean=True``); absent
        parts' entries are 0. It has no latents (``return_latents`` is refused)."""
        check_n(n)
        if return_latents:
            raise ValueError("the per-pattern Gaussian has no latent variables to return")
        e = self.existence_distribution().sample((n,), generator=generator).to(self.loc)
        idx = self.existence_distribution().pattern_index(e)
        if (idx < 0).any():
            raise ValueError(
                "p(e) drew a pattern never seen in training, which has no Gaussian; "
                "sample with existence_smoothing=0"
            )
        noise = torch.randn(n, self.point_dim, generator=generator, dtype=self.loc.dtype).to(
            self.loc.device
        )
        spread = 0.0 if mean else self.variance[idx].sqrt() * noise
        x = torch.where(self.entry_mask(e), self.loc[idx] + spread, 0.0)
        return torch.cat([x, e], -1)
