r"""Shared machinery of the linear-Gaussian latent variable models (factor analysis, PPCA).

.. math::
    p(z) = \mathcal{N}(0, I_K), \qquad p(x \mid z) = \mathcal{N}(W z + \mu, \Psi),
    \qquad \Psi = \operatorname{diag}(\psi).

With an observed set :math:`v` of the :math:`D` coordinates the posterior over :math:`z` is
Gaussian (Williams, Nash & Nazábal 2018, eqs. 4.1–4.2; thesis ch. 4):

.. math::
    P_v = \Sigma_v^{-1} = I + W_v^\top \Psi_v^{-1} W_v, \qquad
    m_v = \Sigma_v\, W_v^\top \Psi_v^{-1} (x_v - \mu_v),

and the marginal of the observed entries is :math:`\mathcal{N}(\mu_v, W_v W_v^\top + \Psi_v)`.
Every missing-data approximation (FCA, SCA, denoising encoder) is measured against these.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule

from pgm3d._validation import check_inputs
from pgm3d.distributions import PrecisionMultivariateNormal
from pgm3d.linalg import SMALL_BATCH, cholesky, masked_gram, unique_rows
from pgm3d.missing import clean_missing, missing_as_nan
from pgm3d.models.base import LINEAR_METHODS, SAMPLERS, Model, check_n

__all__ = ["LinearGaussian", "check_latent_dim"]


def check_latent_dim(latent_dim, data_dim: int) -> int:
    """Validate a latent dimension ``1 <= latent_dim < data_dim`` and return it as int."""
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int):
        raise ValueError(f"latent_dim must be an int, got {latent_dim!r}")
    if not 1 <= latent_dim < data_dim:
        raise ValueError(
            f"latent_dim must satisfy 1 <= latent_dim < D = {data_dim}, got {latent_dim}"
        )
    return latent_dim


class LinearGaussian(Model, PyroModule):
    r"""Base class of linear-Gaussian models: a Pyro model/guide pair with exact inference.

    Subclasses provide the parameters ``W`` of shape ``(D, K)``, ``mu`` of shape ``(D,)`` and
    ``psi`` of shape ``(D,)`` (the noise variances). The guide samples the *exact* posterior
    :math:`p(z \mid x_v)`, so it is the reference proposal against which every approximation
    is measured: with it, the ELBO equals :math:`\log p(x_v)` for every sample.

    Shapes: data ``x`` is ``(B, D)``; ``mask`` is a bool tensor shaped like ``x`` with ``True``
    for observed entries (``None`` = all observed); latents ``z`` are ``(..., B, K)``.
    """

    W: torch.Tensor
    mu: torch.Tensor
    psi: torch.Tensor
    completion_methods = (*LINEAR_METHODS, *SAMPLERS)

    def __init__(self, W: torch.Tensor, mu: torch.Tensor):
        super().__init__()
        W = torch.as_tensor(W)
        if W.dim() != 2 or not W.is_floating_point():
            raise ValueError(f"W must be a 2-D float tensor (D, K), got {tuple(W.shape)}")
        mu = torch.as_tensor(mu, dtype=W.dtype, device=W.device)
        if mu.shape != W.shape[:1]:
            raise ValueError(f"mu must have shape ({W.shape[0]},), got {tuple(mu.shape)}")
        self.W = torch.nn.Parameter(W.clone())
        self.mu = torch.nn.Parameter(mu.clone())

    @staticmethod
    def _random_loadings(data_dim, latent_dim, generator, dtype, device):
        """Standard-normal ``W (D, K)`` and ``mu (D,)`` for the ``random`` constructors."""
        check_latent_dim(latent_dim, data_dim)
        kw = dict(generator=generator, dtype=dtype or torch.get_default_dtype(), device=device)
        return torch.randn(data_dim, latent_dim, **kw), torch.randn(data_dim, **kw), kw

    @property
    def data_dim(self) -> int:
        return self.W.shape[0]

    @property
    def latent_dim(self) -> int:
        return self.W.shape[1]

    # ------------------------------------------------------------------ Pyro model / guide
    def model(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Generative model; missing entries are marginalised by masking the likelihood."""
        x, mask = self._check_inputs(x, mask)
        W, mu, psi = self.W, self.mu, self.psi
        zero = x.new_zeros(self.latent_dim)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(zero, torch.ones_like(zero)).to_event(1))
            px = dist.Normal(z @ W.mT + mu, psi.sqrt())
            if mask is not None:
                px = px.mask(mask)
            pyro.sample("x", px.to_event(1), obs=clean_missing(x, mask))
        return z

    def guide(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Exact posterior guide: samples :math:`z \\sim p(z \\mid x_v)` row by row."""
        posterior = self.exact_posterior(x, mask)
        with pyro.plate("data", x.shape[0]):
            return pyro.sample("z", posterior)

    def decode(self, z: torch.Tensor) -> dist.Independent:
        r""":math:`p(x \mid z) = \mathcal{N}(Wz + \mu, \Psi)` for ``z`` of shape ``(..., K)``."""
        # psi is constrained positive and the mean is finite for finite z, so per-entry
        # validation would only cost a pass over (B, D) on every completion
        loc = z @ self.W.mT + self.mu
        return dist.Normal(loc, self.psi.sqrt(), validate_args=False).to_event(1)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        mean: bool = False,
        return_latents: bool = False,
    ):
        """Draw ``n`` samples ``x`` of shape ``(n, D)`` (and ``z`` of shape ``(n, K)``); with
        ``mean=True`` the means :math:`Wz + \\mu` at the drawn ``z``.

        :param generator: torch generator on the model's device; ``None`` uses the global one
            (seed it with ``pyro.set_rng_seed``).
        """
        check_n(n)
        with torch.no_grad():  # a draw, not a reparameterised sample
            W = self.W
            kw = dict(generator=generator, dtype=W.dtype, device=W.device)
            z = torch.randn(n, self.latent_dim, **kw)
            x = z @ W.mT + self.mu
            if not mean:
                x = x + self.psi.sqrt() * torch.randn(n, self.data_dim, **kw)
        return (x, z) if return_latents else x

    def exact_log_likelihood(self, x, mask, existence=None) -> torch.Tensor:
        """The closed form :meth:`log_likelihood`."""
        return self.log_likelihood(x, mask)

    # ------------------------------------------------------------------ exact inference
    def full_precision(self) -> torch.Tensor:
        r"""Full-data posterior precision :math:`P = I + W^\top \Psi^{-1} W`, shape ``(K, K)``."""
        W, psi = self.W, self.psi
        P = W.mT @ (W / psi[:, None])
        return P + torch.eye(self.latent_dim, dtype=W.dtype, device=W.device)

    def marginal_covariance(self) -> torch.Tensor:
        r"""Covariance :math:`C = W W^\top + \Psi` of :math:`p(x)`, shape ``(D, D)``."""
        W = self.W
        return W @ W.mT + torch.diag(self.psi)

    def project(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        r"""Encoder input :math:`b = W_v^\top \Psi_v^{-1}(x_v - \mu_v)` per row, shape ``(B, K)``.

        Missing entries contribute zero, whatever value ``x`` holds there.
        """
        x, mask = self._check_inputs(x, mask)
        return self._project(x, mask)

    def precision(
        self, mask: torch.Tensor, *, sparse: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Posterior precisions :math:`P_v = I + W_v^\top\Psi_v^{-1}W_v`, one per mask pattern.

        Rows of ``mask`` that share a pattern share one matrix. All patterns come from one
        matrix product, and a pattern with fewer missing than observed entries is *downdated*
        from the full-data precision, :math:`P_v = P - W_m^\top \Psi_m^{-1} W_m`, so the work
        per pattern follows :math:`\min(|v|, |m|)` (see :func:`pgm3d.linalg.masked_gram`).

        :param torch.Tensor mask: bool ``(B, D)``, ``True`` = observed.
        :param sparse: force the sparse or dense product (``None``: choose by density).
        :returns: ``(P, inverse)``: ``P`` of shape ``(U, K, K)`` and ``inverse`` of shape
            ``(B,)`` with row ``i`` using ``P[inverse[i]]``; patterns are numbered in order of
            first occurrence.
        """
        W = self.W
        if mask.dim() != 2 or mask.shape[1] != W.shape[0] or mask.dtype != torch.bool:
            raise ValueError(
                f"mask must be a bool tensor of shape (B, {W.shape[0]}), got {mask.dtype} "
                f"{tuple(mask.shape)}"
            )
        patterns, inverse = unique_rows(mask)
        P = masked_gram(W, self.psi.reciprocal(), patterns, diagonal=1.0, sparse=sparse)
        return P, inverse

    def exact_posterior(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> PrecisionMultivariateNormal:
        r"""Exact posterior :math:`p(z \mid x_v) = \mathcal{N}(m_v, P_v^{-1})` of every row.

        One ``K x K`` Cholesky factorisation per distinct mask pattern, all batched; a row that
        observes nothing gets the prior.

        :param torch.Tensor x: ``(B, D)`` data; missing entries may hold anything (NaN too).
        :param mask: bool ``(B, D)``, ``True`` = observed; ``None`` = fully observed.
        :returns: a :class:`~pgm3d.distributions.PrecisionMultivariateNormal` with batch
            shape ``(B,)`` and event shape ``(K,)``.
        """
        x, mask = self._check_inputs(x, mask)
        loc, L, index, _ = self._posterior_terms(x, mask)
        return PrecisionMultivariateNormal(loc, L, index, validate_args=False)

    def log_likelihood(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        r"""Exact marginal log-density of each row's observed entries, shape ``(B,)``.

        .. math::
            \log \mathcal{N}(x_v; \mu_v, W_vW_v^\top + \Psi_v)
            = -\tfrac12\big[|v|\log 2\pi + \textstyle\sum_v \log\psi + \log|P_v|
              + r^\top\Psi_v^{-1} r - b^\top P_v^{-1} b\big]

        with :math:`r = x_v - \mu_v` and :math:`b = W_v^\top\Psi_v^{-1} r` (Woodbury), sharing
        the factorisation of :meth:`exact_posterior`. Differentiable in the parameters.
        """
        x, mask = self._check_inputs(x, mask)
        return self._log_likelihood(x, mask, *self._posterior_terms(x, mask))

    def posterior_and_log_likelihood(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """:meth:`exact_posterior` and :meth:`log_likelihood` from one factorisation (an EM
        step needs both)."""
        x, mask = self._check_inputs(x, mask)
        terms = self._posterior_terms(x, mask)
        loc, L, index, _ = terms
        posterior = PrecisionMultivariateNormal(loc, L, index, validate_args=False)
        return posterior, self._log_likelihood(x, mask, *terms)

    def _log_likelihood(self, x, mask, loc, L, index, b) -> torch.Tensor:
        psi = self.psi
        resid = clean_missing(x - self.mu, mask)
        quad = (resid.pow(2) / psi).sum(-1) - (b * loc).sum(-1)
        log_det_P = 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        if index is not None:
            log_det_P = log_det_P[index]
        if mask is None:
            n_obs = torch.full_like(quad, self.data_dim)
            log_det_psi = psi.log().sum()
        else:
            n_obs = mask.sum(-1).to(x.dtype)
            log_det_psi = (mask * psi.log()).sum(-1)
        return -0.5 * (n_obs * math.log(2 * math.pi) + log_det_psi + log_det_P + quad)

    # ------------------------------------------------------------------ helpers
    def _check_inputs(self, x, mask):
        return check_inputs(self, x, missing_as_nan(x, mask))

    def _project(self, x, mask):
        return clean_missing(x - self.mu, mask) @ (self.W / self.psi[:, None])

    def _posterior_terms(self, x, mask):
        """Posterior means ``(B, K)``, precision factors and their row index, and ``b``.

        The factors are ``(K, K)`` (one for all rows, ``index`` None), ``(B, K, K)`` (one per
        row, ``index`` None) or ``(U, K, K)`` shared through ``index`` of shape ``(B,)``.
        """
        b = self._project(x, mask)
        if mask is None:
            P, inverse = self.full_precision()[None], None
        else:
            P, inverse = self.precision(mask)
        L = cholesky(P)
        U, B = L.shape[0], x.shape[0]
        if U == 1:
            # one factor for every row: a single multi-right-hand-side solve
            return torch.cholesky_solve(b.mT, L[0]).mT, L[0], None, b
        if U == B:
            # all rows differ; patterns are numbered by first occurrence, so inverse == arange
            return _solve(L, b), L, None, b
        if U <= SMALL_BATCH:
            # few patterns: one multi-right-hand-side solve per pattern, no per-row copies
            loc = torch.empty_like(b)
            order = torch.argsort(inverse)
            counts = torch.bincount(inverse, minlength=U).tolist()
            for u, rows in enumerate(torch.split(order, counts)):
                loc[rows] = torch.cholesky_solve(b[rows].mT, L[u]).mT
            return loc, L, inverse, b
        return _solve(L[inverse], b), L, inverse, b


def _solve(L: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise :math:`(L L^\top)^{-1} b` for ``L`` of shape ``(B, K, K)``, ``b`` of ``(B, K)``."""
    y = torch.linalg.solve_triangular(L, b.unsqueeze(-1), upper=False)
    return torch.linalg.solve_triangular(L.mT, y, upper=True).squeeze(-1)


def principal_components(Xc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Eigen-decomposition of the ML sample covariance :math:`S = X_c^\top X_c / N`.

    :param torch.Tensor Xc: centred data ``(N, D)``.
    :returns: eigenvalues ``(D,)`` in decreasing order (zeros past the rank) and the matching
        eigenvectors as columns of a ``(D, r)`` matrix, ``r = min(N, D)``, with each column's
        largest-magnitude entry made positive so results do not depend on the SVD's sign choice.
    """
    N, D = Xc.shape
    _, s, Vh = torch.linalg.svd(Xc, full_matrices=False)
    lam = Xc.new_zeros(D)
    lam[: s.numel()] = s.pow(2) / N
    V = Vh.mT
    idx = V.abs().argmax(0)
    signs = torch.sign(V[idx, torch.arange(V.shape[1], device=V.device)])
    return lam, V * torch.where(signs == 0, torch.ones_like(signs), signs)
