"""Distributions used by pgm3d's exact and approximate posteriors."""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from pyro.distributions.util import broadcast_shape
from torch.distributions import constraints
from torch.distributions.multivariate_normal import _precision_to_scale_tril
from torch.distributions.utils import lazy_property

__all__ = ["PrecisionMultivariateNormal"]


class PrecisionMultivariateNormal(dist.MultivariateNormal):
    r"""Gaussian :math:`\mathcal{N}(\mu, P^{-1})` given the Cholesky factor of its precision.

    With :math:`P = L L^\top` (``L`` lower triangular),

    .. math::
        z = \mu + L^{-\top}\epsilon,\quad
        \log p(z) = -\tfrac12\lVert L^\top (z-\mu)\rVert^2 - \tfrac{K}{2}\log 2\pi
                    + \textstyle\sum_i \log L_{ii}.

    Posteriors of linear-Gaussian models arrive as precisions
    (:math:`P = I + W^\top\Psi^{-1}W`), and sampling, densities and entropies need only ``L``.
    :class:`torch.distributions.MultivariateNormal` would turn the precision into a covariance
    factor eagerly (a batched triangular inverse, the costliest step for many small ``K x K``
    posteriors); here that factor, ``covariance_matrix`` and ``variance`` are formed only if
    asked for. It is a :class:`pyro.distributions.MultivariateNormal`, so it works wherever
    one does (``pyro.sample``, ``kl_divergence``, ``.to_event``/``.mask``).

    :param torch.Tensor loc: mean, shape ``batch_shape + (K,)``.
    :param torch.Tensor precision_tril: lower Cholesky factor of the precision, shape
        broadcastable to ``batch_shape + (K, K)``; or, with ``index``, ``(U, K, K)`` factors
        shared by groups of rows.
    :param torch.Tensor index: optional ``(B,)`` long tensor; row ``i`` (along the last batch
        dimension) uses ``precision_tril[index[i]]``. The per-row copy is made only when a
        sample or density needs it, so many rows sharing few patterns cost little memory.
    """

    arg_constraints = {
        "loc": constraints.real_vector,
        "precision_tril": constraints.lower_cholesky,
    }

    def __init__(
        self,
        loc: torch.Tensor,
        precision_tril: torch.Tensor,
        index: torch.Tensor | None = None,
        validate_args=None,
    ):
        if loc.dim() < 1 or precision_tril.dim() < 2:
            raise ValueError("loc must be at least 1-D and precision_tril at least 2-D")
        K = loc.shape[-1]
        if precision_tril.shape[-2:] != (K, K):
            raise ValueError(
                f"precision_tril of shape {tuple(precision_tril.shape)} does not match "
                f"loc of shape {tuple(loc.shape)}"
            )
        if index is None:
            factor_batch = precision_tril.shape[:-2]
            self._unbroadcasted_precision_tril = precision_tril
        else:
            if precision_tril.dim() != 3 or index.dim() != 1:
                raise ValueError("with index, precision_tril must be (U, K, K) and index (B,)")
            factor_batch = index.shape
            self._factors, self._index = precision_tril, index
        # Pyro's pure-Python broadcast: torch.broadcast_shapes imports torch._refs, and with
        # it SymPy, on first use (0.3 s of a small fit)
        batch_shape = torch.Size(broadcast_shape(factor_batch, loc.shape[:-1]))
        self.loc = loc.expand(batch_shape + (-1,))
        # skip MultivariateNormal.__init__, which would factor the covariance eagerly, and
        # validate the shared factors here rather than a per-row copy of them
        torch.distributions.Distribution.__init__(
            self, batch_shape, loc.shape[-1:], validate_args=False
        )
        if validate_args is None:
            validate_args = torch.distributions.Distribution._validate_args
        self._validate_args = validate_args
        if validate_args:
            if not bool(constraints.real_vector.check(loc).all()):
                raise ValueError("loc must be finite")
            if not bool(constraints.lower_cholesky.check(precision_tril).all()):
                raise ValueError("precision_tril must be lower triangular, positive diagonal")

    @lazy_property
    def _unbroadcasted_precision_tril(self) -> torch.Tensor:
        # only reached when built with an index: gather the shared factors row by row
        return self._factors[self._index]

    @property
    def precision_tril(self) -> torch.Tensor:
        """Lower Cholesky factor of the precision, ``batch_shape + (K, K)``."""
        return self._unbroadcasted_precision_tril.expand(
            self._batch_shape + self._event_shape + self._event_shape
        )

    def _per_factor(self, fn) -> torch.Tensor:
        """``fn`` of each row's factor, computed once per shared factor when indexed."""
        if "_unbroadcasted_precision_tril" not in self.__dict__:
            return fn(self._factors)[self._index]
        return fn(self._unbroadcasted_precision_tril)

    @lazy_property
    def _unbroadcasted_scale_tril(self) -> torch.Tensor:
        return self._per_factor(lambda L: _precision_to_scale_tril(L @ L.mT))

    @lazy_property
    def precision_matrix(self) -> torch.Tensor:
        P = self._per_factor(lambda L: L @ L.mT)
        return P.expand(self._batch_shape + self._event_shape + self._event_shape)

    @lazy_property
    def covariance_matrix(self) -> torch.Tensor:
        cov = self._per_factor(torch.cholesky_inverse)
        return cov.expand(self._batch_shape + self._event_shape + self._event_shape)

    @property
    def variance(self) -> torch.Tensor:
        return self.covariance_matrix.diagonal(dim1=-2, dim2=-1)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        new = self._get_checked_instance(PrecisionMultivariateNormal, _instance)
        new.loc = self.loc.expand(batch_shape + self.event_shape)
        for name in (
            "_unbroadcasted_precision_tril",
            "_unbroadcasted_scale_tril",
            "_factors",
            "_index",
        ):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name])
        torch.distributions.Distribution.__init__(
            new, batch_shape, self.event_shape, validate_args=False
        )
        new._validate_args = self._validate_args
        return new

    def _half_log_det_precision(self) -> torch.Tensor:
        return self._per_factor(lambda L: L.diagonal(dim1=-2, dim2=-1).log().sum(-1))

    def _per_column(self, v: torch.Tensor, fn) -> torch.Tensor:
        """``fn(L, v')`` where the dims of ``v (..., K)`` in front of the factor's own batch
        dims become columns, ``v' (*L.batch, K, S)``: one triangular solve or product per
        factor with S right-hand sides rather than a small one per row and sample, which is
        far faster for many samples or a factor shared by many rows."""
        L = self._unbroadcasted_precision_tril
        batch, K = L.shape[:-2], v.shape[-1]
        if v.shape[v.dim() - 1 - len(batch) : -1] != batch:  # L broadcasts inside v's batch
            return fn(L.expand(v.shape[:-1] + L.shape[-2:]), v.unsqueeze(-1)).squeeze(-1)
        cols = v.reshape(-1, *batch, K).movedim(0, -1)  # (*batch, K, S)
        return fn(L, cols).movedim(-1, 0).reshape(v.shape)

    def rsample(self, sample_shape=()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        # x = L^-T eps, so that Cov x = (L L^T)^-1
        solve = lambda L, e: torch.linalg.solve_triangular(L.mT, e, upper=True)  # noqa: E731
        return self.loc + self._per_column(eps, solve)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        diff = value - self.loc
        y = self._per_column(diff, lambda L, d: L.mT @ d)
        K = self._event_shape[0]
        return (
            -0.5 * (K * math.log(2 * math.pi) + y.pow(2).sum(-1)) + self._half_log_det_precision()
        )

    def entropy(self) -> torch.Tensor:
        K = self._event_shape[0]
        H = 0.5 * K * (1.0 + math.log(2 * math.pi)) - self._half_log_det_precision()
        return H.expand(self._batch_shape)
