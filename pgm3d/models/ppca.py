r"""Probabilistic PCA (Tipping & Bishop 1999): a linear-Gaussian model with isotropic noise.

.. math:: p(z) = \mathcal{N}(0, I_K), \qquad p(x \mid z) = \mathcal{N}(Wz + \mu, \sigma^2 I_D).
"""

from __future__ import annotations

import torch
from pyro.nn import PyroParam
from torch.distributions import constraints

from pgm3d._validation import as_data, check_observed_finite
from pgm3d.models.linear_gaussian import LinearGaussian, check_latent_dim, principal_components

__all__ = ["PPCA"]


class PPCA(LinearGaussian):
    r"""Probabilistic PCA as a Pyro model/guide pair with exact missing-data inference.

    :param torch.Tensor W: loadings ``(D, K)``.
    :param torch.Tensor mu: mean ``(D,)``.
    :param sigma2: noise variance :math:`\sigma^2 > 0` (scalar); ``psi`` is
        :math:`\sigma^2 \mathbf{1}_D`.

    Fit in closed form with :meth:`fit`; see :class:`~pgm3d.models.LinearGaussian` for the
    inference methods.
    """

    trained_by = "closed-form"

    def __init__(self, W: torch.Tensor, mu: torch.Tensor, sigma2):
        super().__init__(W, mu)
        sigma2 = torch.as_tensor(sigma2, dtype=self.W.dtype, device=self.W.device)
        if sigma2.dim() != 0 or not bool(sigma2 > 0):
            raise ValueError(f"sigma2 must be a positive scalar, got {sigma2}")
        self.sigma2 = PyroParam(sigma2.clone(), constraint=constraints.positive)

    @property
    def psi(self) -> torch.Tensor:
        """Noise variances ``(D,)``, all equal to ``sigma2``."""
        return self.sigma2.expand(self.W.shape[0])

    @classmethod
    def from_data(cls, data, *, latent_dim=None, **_) -> PPCA:
        """Fitted in closed form (:meth:`fit`) to complete float64 rows; ``latent_dim``
        defaults to 8."""
        from pgm3d.models.base import flat_rows

        x, mask = flat_rows(data)
        if not bool(mask.all()):
            raise ValueError("ppca is fitted in closed form from complete rows; use fa instead")
        return cls.fit(x.to(torch.float64), latent_dim or 8)

    @classmethod
    def fit_missing(cls, X, mask, latent_dim: int, max_iter: int = 500, tol: float = 1e-6, *,
                    min_psi: float = 1e-6, holdout: float = 0.0, patience: int = 10,
                    generator: torch.Generator | None = None,
                    progress: bool | None = None) -> PPCA:  # fmt: skip
        r"""Maximum-likelihood PPCA from incomplete data by EM: the E- and M-steps of
        :meth:`FactorAnalysis.fit_missing <pgm3d.models.FactorAnalysis.fit_missing>` with one
        noise variance, the observed entries' mean expected squared residual

        .. math:: \sigma^2 = \frac{\sum_{n,d} m_{nd}\,
                  \mathbb{E}\big[(x_{nd} - W_d z_n - \mu_d)^2\big]}{\sum_{n,d} m_{nd}}

        (Tipping & Bishop 1999, §3.2 with the missing entries marginalised; Ilin & Raiko 2010).
        ``holdout``/``patience`` stop early on held-out observed entries, as there: with many
        entries missing, :math:`\sigma^2 \to 0` overfits (Ilin & Raiko 2010).
        """
        from pgm3d.models.factor_analysis import FactorAnalysis

        fit = FactorAnalysis.fit_missing.__func__
        return fit(cls, X, mask, latent_dim, max_iter, tol, min_psi=min_psi, holdout=holdout,
                   patience=patience, generator=generator, progress=progress)  # fmt: skip

    @classmethod
    def _from_em(cls, W, mu, psi, count) -> PPCA:
        """The model of an EM step: the per-dimension variances pooled over observed entries."""
        return cls(W, mu, (psi * count).sum() / count.sum())

    @classmethod
    def random(
        cls,
        data_dim: int,
        latent_dim: int,
        *,
        sigma2: float = 0.1,
        generator=None,
        dtype=None,
        device=None,
    ) -> PPCA:
        """A PPCA model with standard-normal loadings and mean, for tests and initialisation."""
        W, mu, _ = cls._random_loadings(data_dim, latent_dim, generator, dtype, device)
        return cls(W, mu, sigma2)

    @classmethod
    def fit(cls, X, latent_dim: int | None = None, explained_variance: float | None = None) -> PPCA:
        r"""Maximum-likelihood PPCA in closed form (Tipping & Bishop 1999, eqs. 7–8).

        With :math:`\lambda_1 \ge \dots \ge \lambda_D` the eigenvalues of the sample covariance
        and :math:`U_K` the leading eigenvectors,

        .. math::
            \mu = \bar x, \quad \sigma^2 = \frac{1}{D-K}\sum_{j>K}\lambda_j, \quad
            W = U_K(\Lambda_K - \sigma^2 I)^{1/2}.

        :param X: data ``(N, D)`` (tensor or array); the model follows its dtype and device.
        :param int latent_dim: number of components ``K`` (``1 <= K < D``), or
        :param float explained_variance: choose the smallest ``K`` whose components explain at
            least this fraction of the total variance (thesis ch. 4 uses 0.9).
        :returns: the fitted :class:`PPCA`.
        """
        X = as_data(X, "X")
        if bool(X.isnan().any()):
            raise ValueError("X has NaN (missing) entries; PPCA.fit needs complete data")
        check_observed_finite(X, None, "X")
        N, D = X.shape
        if (latent_dim is None) == (explained_variance is None):
            raise ValueError("give exactly one of latent_dim or explained_variance")
        mu = X.mean(0)
        lam, V = principal_components(X - mu)
        if explained_variance is not None:
            if not 0 < explained_variance < 1:
                raise ValueError(f"explained_variance must be in (0, 1), got {explained_variance}")
            ratio = torch.cumsum(lam, 0) / lam.sum()
            latent_dim = int((ratio < explained_variance).sum()) + 1
        check_latent_dim(latent_dim, D)
        K = latent_dim
        sigma2 = lam[K:].sum() / (D - K)
        if not bool(sigma2 > 0):
            raise ValueError(
                f"the data has rank <= latent_dim = {K}, so the noise variance is zero; "
                "use fewer components"
            )
        if K > V.shape[1]:
            raise ValueError(f"latent_dim = {K} exceeds the number of rows N = {N}")
        W = V[:, :K] * (lam[:K] - sigma2).clamp_min(0).sqrt()
        return cls(W, mu, sigma2)
