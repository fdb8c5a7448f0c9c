r"""Factor analysis: a linear-Gaussian model with a diagonal noise covariance.

.. math:: p(z) = \mathcal{N}(0, I_K), \qquad p(x \mid z) = \mathcal{N}(Wz + \mu, \Psi),
          \qquad \Psi = \operatorname{diag}(\psi_1, \dots, \psi_D).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import torch
from pyro.nn import PyroParam
from torch.distributions import constraints

from pgm3d._progress import progress_bar
from pgm3d._validation import as_data, check_observed_finite, check_rows_observed
from pgm3d.models.linear_gaussian import (
    LinearGaussian,
    check_latent_dim,
    cholesky,
    principal_components,
)

__all__ = ["EMInfo", "FactorAnalysis"]


@dataclass
class EMInfo:
    """What :meth:`FactorAnalysis.fit` did: iterations, convergence, per-datum log-likelihood."""

    n_iter: int
    converged: bool
    log_likelihood: list[float] = field(default_factory=list)
    #: with ``fit_missing(holdout=...)``: the held-out entries' mean log predictive density
    #: per iteration, and the (1-based) iteration whose model was returned
    held_out_log_likelihood: list[float] = field(default_factory=list)
    best_iter: int | None = None


def quiet_em(fn, *args, **kwargs):
    """Run an EM fit with its slow-convergence warnings silenced (they are not errors when a
    model is built by name)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


class FactorAnalysis(LinearGaussian):
    r"""Factor analysis as a Pyro model/guide pair with exact missing-data inference.

    :param torch.Tensor W: loadings ``(D, K)``.
    :param torch.Tensor mu: mean ``(D,)``.
    :param torch.Tensor psi: noise variances ``(D,)``, all positive.

    Fit by EM with :meth:`fit`; see :class:`~pgm3d.models.LinearGaussian` for the inference
    methods (``exact_posterior``, ``log_likelihood``, ``model``/``guide``).
    """

    trained_by = "em"

    def __init__(self, W: torch.Tensor, mu: torch.Tensor, psi: torch.Tensor):
        super().__init__(W, mu)
        W = self.W
        psi = torch.as_tensor(psi, dtype=W.dtype, device=W.device)
        if psi.shape != W.shape[:1]:
            raise ValueError(f"psi must have shape ({W.shape[0]},), got {tuple(psi.shape)}")
        if not bool((psi > 0).all()):
            raise ValueError("psi must be positive")
        self.psi = PyroParam(psi.clone(), constraint=constraints.positive, event_dim=1)
        self.fit_info: EMInfo | None = None

    def extra_state(self) -> dict:
        return {} if self.fit_info is None else {"fit_info": asdict(self.fit_info)}

    def load_extra_state(self, state: dict) -> None:
        if "fit_info" in state:
            self.fit_info = EMInfo(**state["fit_info"])

    @classmethod
    def from_data(cls, data, *, latent_dim=None, progress=None, **_) -> FactorAnalysis:
        """Fitted by EM (:meth:`fit`, or :meth:`fit_missing` when entries are missing) to any
        data as float64 rows; ``latent_dim`` defaults to 8."""
        from pgm3d.models.base import flat_rows

        x, mask = flat_rows(data)
        x, K = x.to(torch.float64), latent_dim or 8
        if bool(mask.all()):
            return quiet_em(cls.fit, x, K, progress=progress)
        return quiet_em(cls.fit_missing, x, mask, K, progress=progress)

    @classmethod
    def random(
        cls,
        data_dim: int,
        latent_dim: int,
        *,
        generator=None,
        dtype=None,
        device=None,
    ) -> FactorAnalysis:
        """A model with standard-normal ``W`` and ``mu`` and ``psi ~ U(0.1, 1.1)``."""
        W, mu, kw = cls._random_loadings(data_dim, latent_dim, generator, dtype, device)
        return cls(W, mu, 0.1 + torch.rand(data_dim, **kw))

    @classmethod
    def fit(
        cls,
        X,
        latent_dim: int,
        max_iter: int = 1000,
        tol: float | None = None,
        *,
        method: str = "eig",
        min_psi: float = 1e-6,
        progress: bool | None = None,
    ) -> FactorAnalysis:
        r"""Maximum-likelihood factor analysis, by default by the fixed point of Barber (2012,
        Alg. 21.1; scikit-learn's ``FactorAnalysis`` uses it too) and optionally by EM (thesis
        eqs. 2.30–2.33). Both reach the same optimum; the fixed point in far fewer iterations.

        ``method="eig"``: given :math:`\Psi`, the likelihood is maximised in :math:`W` in closed
        form. With :math:`\lambda_k, u_k` the eigenpairs of the scaled covariance
        :math:`\Psi^{-1/2} S \Psi^{-1/2}` (descending),

        .. math::
            W = \Psi^{1/2} U_K (\Lambda_K - I)_+^{1/2}, \qquad
            \psi \leftarrow \operatorname{diag}(S - W W^\top),

        and the per-datum log-likelihood at :math:`(W, \Psi)` is
        :math:`-\tfrac12[D\log 2\pi + \sum_d \log\psi_d + \sum_{k\le K}(\log\bar\lambda_k
        + \lambda_k/\bar\lambda_k) + \sum_{k>K}\lambda_k]`, :math:`\bar\lambda_k =
        \max(\lambda_k, 1)`. ``S`` is formed once, so an iteration costs one ``D x D``
        eigen-decomposition, :math:`O(D^3)`, whatever ``N``.

        ``method="em"``: E-step, with :math:`G = (I + W^\top\Psi^{-1}W)^{-1}`:

        .. math::
            \mathbb{E}[z_n] = G W^\top \Psi^{-1}(x_n - \mu), \qquad
            \mathbb{E}[z_n z_n^\top] = G + \mathbb{E}[z_n]\mathbb{E}[z_n]^\top.

        M-step:

        .. math::
            W \leftarrow \Big[\sum_n (x_n-\mu)\mathbb{E}[z_n]^\top\Big]
                         \Big[\sum_n \mathbb{E}[z_n z_n^\top]\Big]^{-1}, \qquad
            \psi \leftarrow \operatorname{diag}\Big(S - \frac1N W
                \sum_n \mathbb{E}[z_n](x_n-\mu)^\top\Big).

        Each iteration costs :math:`O(NDK)`; the log-likelihood, which EM never decreases, is
        computed from the E-step's quantities and stops the loop once its per-datum increase
        falls below ``tol`` (absolute, in nats). ``mu`` is the sample mean. The loadings start
        from the PPCA solution. Details are stored in ``model.fit_info``.

        :param X: complete data ``(N, D)``; the model follows its dtype and device.
        :param int latent_dim: number of factors ``K``, ``1 <= K < D``.
        :param int max_iter: most iterations; a warning is given if they run out.
        :param float tol: convergence threshold on the per-datum log-likelihood (default: for
            ``"eig"`` scikit-learn's, a total increase below 0.01, i.e. ``0.01 / N`` per datum;
            for ``"em"``, 1e-7).
        :param str method: ``"eig"`` (the fixed point) or ``"em"`` (the thesis's EM).
        :param float min_psi: floor on each ``psi_d``, relative to the mean variance of the
            columns (Heywood cases and constant columns otherwise drive a variance to zero).
        :param progress: show a progress bar (``None``: only on a terminal).
        """
        if method not in ("eig", "em"):
            raise ValueError(f"method must be 'eig' or 'em', got {method!r}")
        X = as_data(X, "X")
        if bool(X.isnan().any()):
            raise ValueError(
                "X has NaN (missing) entries; FactorAnalysis.fit needs complete data "
                "(fit_missing takes incomplete data)"
            )
        check_observed_finite(X, None, "X")
        N, D = X.shape
        K = check_latent_dim(latent_dim, D)
        if max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter}")
        mu = X.mean(0)
        Xc = X - mu
        var = Xc.pow(2).mean(0)
        # relative to the mean variance, so constant columns (blank pixels) stay well posed
        floor = min_psi * var.mean().clamp_min(torch.finfo(X.dtype).tiny)
        if K > min(N, D):
            raise ValueError(f"latent_dim = {K} exceeds the number of rows N = {N}")
        if tol is None:
            tol = 1e-2 / N if method == "eig" else 1e-7
        if method == "eig":
            return cls._fit_eig(Xc, mu, var, K, floor, max_iter, tol, progress)
        lam, V = principal_components(Xc)
        sigma2 = lam[K:].sum() / (D - K)
        W = V[:, :K] * (lam[:K] - sigma2).clamp_min(0).sqrt()
        psi = torch.maximum(var - W.pow(2).sum(1), floor)
        eye = torch.eye(K, dtype=X.dtype, device=X.device)
        history: list[float] = []
        converged = False
        bar = progress_bar(range(max_iter), desc="FA EM", progress=progress)
        n_iter = 0
        for _ in bar:
            n_iter += 1
            Wp = W / psi[:, None]
            L = cholesky(eye + W.mT @ Wp)
            B = Xc @ Wp  # rows b_n = W^T Psi^-1 (x_n - mu)
            Ez = torch.cholesky_solve(B.mT, L).mT
            # per-datum log-likelihood at the current parameters (Woodbury, as in
            # LinearGaussian.log_likelihood), free from the E-step's quantities
            ll = -0.5 * (
                D * math.log(2 * math.pi)
                + psi.log().sum()
                + 2 * L.diagonal().log().sum()
                + (var / psi).sum()
                - (B * Ez).sum() / N
            )
            history.append(float(ll))
            if len(history) > 1 and history[-1] - history[-2] < tol:
                converged = True
                break
            Sxz = Xc.mT @ Ez / N
            Szz = torch.cholesky_inverse(L) + Ez.mT @ Ez / N
            W = torch.linalg.solve(Szz, Sxz.mT).mT
            psi = torch.maximum(var - (W * Sxz).sum(1), floor)
            bar.set_postfix(ll=f"{history[-1]:.4f}")
        bar.close()
        if not converged:
            _unconverged("EM", history, max_iter, tol, stacklevel=3)
        model = cls(W, mu, psi)
        model.fit_info = EMInfo(n_iter=n_iter, converged=converged, log_likelihood=history)
        return model

    @classmethod
    def _fit_eig(cls, Xc, mu, var, K, floor, max_iter, tol, progress) -> FactorAnalysis:
        r"""The fixed point of :meth:`fit` (``method="eig"``), started from PPCA's solution
        and accelerated by SQUAREM (Varadhan & Roland 2008) on :math:`\log\psi`: two
        fixed-point steps give a direction and a step length for an extrapolation, kept when
        it does not lower the likelihood below the plain second step's (which is taken
        otherwise), so the likelihood never decreases.

        With many columns and few factors (``2 (K + 10) <= D``) only the top ``K`` eigenpairs
        are computed, by subspace iteration warm-started from the previous step's (``psi``
        moves little from one step to the next): on Frey faces (D = 560, K = 10) 5.6x faster
        than full decompositions, to the same likelihood (``benchmarks/fa_fit.py``)."""
        N, D = Xc.shape
        S = Xc.mT @ Xc / N
        top_k, basis = 2 * (K + _OVERSAMPLE) <= D, None
        # the start: PPCA's closed form from S's top K eigenpairs
        if not top_k:
            lam, V = torch.linalg.eigh(S)
            lam, V = lam.flip(0)[:K], V.flip(1)[:, :K]
        else:
            lam, V, basis = _top_eigenpairs(S, K, None, power=_POWER_START)
        sigma2 = ((S.diagonal().sum() - lam.sum()) / (D - K)).clamp_min(0)
        W = V * (lam - sigma2).clamp_min(0).sqrt()
        psi = torch.maximum(var - W.pow(2).sum(1), floor)

        def step(psi):  # the likelihood at psi (W optimal), W, and the next psi
            nonlocal basis
            root = psi.sqrt()
            A = S / root[:, None] / root[None, :]
            if not top_k:
                lam, U = torch.linalg.eigh(A)
                lam, U = lam.flip(0)[:K], U.flip(1)[:, :K]  # descending
            else:
                lam, U, basis = _top_eigenpairs(A, K, basis)
            top = lam.clamp_min(1.0)
            # the exact likelihood of the W below (U orthonormal, lam its Rayleigh quotients:
            # exact eigenpairs, or Ritz pairs of the subspace iteration), with the trace
            # standing for the sum of every eigenvalue
            ll = -0.5 * (
                D * math.log(2 * math.pi)
                + psi.log().sum()
                + (top.log() + lam / top - lam).sum()
                + A.diagonal().sum()
            )
            W = root[:, None] * U * (top - 1.0).sqrt()
            return float(ll), W, torch.maximum(var - W.pow(2).sum(1), floor)

        history: list[float] = []
        converged = False
        bar = progress_bar(range(max_iter), desc="FA (fixed point)", progress=progress)
        n_iter = 0
        ll, W, nxt = step(psi)
        history.append(ll)
        for _ in bar:
            n_iter += 1
            ll1, _, psi2 = step(nxt)
            r = nxt.log() - psi.log()
            v = psi2.log() - 2 * nxt.log() + psi.log()
            alpha = -(r.norm() / v.norm().clamp_min(1e-300)).clamp(max=-1.0)
            jump = torch.maximum((psi.log() - 2 * alpha * r + alpha**2 * v).exp(), floor)
            ll_jump, W_jump, nxt_jump = step(jump)
            if ll_jump >= ll1:  # the extrapolation helped: continue from it
                psi, ll, W, nxt = jump, ll_jump, W_jump, nxt_jump
            else:  # two plain steps
                psi = psi2
                ll, W, nxt = step(psi)
            history.append(ll)
            if history[-1] - history[-2] < tol:
                converged = True
                break
            bar.set_postfix(ll=f"{history[-1]:.4f}")
        bar.close()
        if not converged:
            _unconverged("the fixed point", history, max_iter, tol, stacklevel=4)
        # the sign of each column is the eigen-solver's; make its largest entry positive, as
        # the PCA start does, so results do not depend on it
        sign = torch.sign(W.gather(0, W.abs().argmax(0, keepdim=True)))
        # contiguous: the eigenvectors are a flipped view, and a saved-and-loaded copy (always
        # contiguous) must compute the same numbers to the last bit
        W = (W * torch.where(sign == 0, 1.0, sign)).contiguous()
        model = cls(W, mu, psi.contiguous())
        model.fit_info = EMInfo(n_iter=n_iter, converged=converged, log_likelihood=history)
        return model

    @classmethod
    def _from_em(cls, W, mu, psi, count) -> FactorAnalysis:
        """The model of an EM step: one noise variance per dimension."""
        return cls(W, mu, psi)

    @classmethod
    def fit_missing(
        cls,
        X,
        mask: torch.Tensor,
        latent_dim: int,
        max_iter: int = 500,
        tol: float = 1e-6,
        *,
        min_psi: float = 1e-6,
        holdout: float = 0.0,
        patience: int = 10,
        generator: torch.Generator | None = None,
        progress: bool | None = None,
    ) -> FactorAnalysis:
        r"""Maximum-likelihood factor analysis from incomplete data by EM (Ghahramani & Jordan
        1994): the E-step takes each row's exact posterior given its observed entries,
        :math:`m_n, S_n`; with :math:`\tilde z = [z; 1]` the M-step solves, for every
        dimension ``d`` over the rows ``n`` that observe it,

        .. math::
            [W_d, \mu_d] = \Big[\sum_n x_{nd}\, \mathbb{E}\tilde z_n^\top\Big]
                \Big[\sum_n \mathbb{E}\tilde z_n \tilde z_n^\top\Big]^{-1}, \quad
            \psi_d = \frac{1}{N_d} \sum_n \mathbb{E}\big[(x_{nd} - W_d z_n - \mu_d)^2\big].

        The observed-data log-likelihood never decreases; the loop stops when its per-row
        increase falls below ``tol``. Starts from PCA of the mean-imputed data.

        **Early stopping.** With half of each row missing the maximum can lie at infinity:
        once ``latent_dim`` reaches the number of entries a row observes, ``W z_n`` fits that
        row exactly and the noise variance heads to zero (measured on digits, 50% missing,
        K = 33: PPCA's imputation MSE rose from 0.037 after 5 iterations to 0.209 after 300).
        ``holdout > 0`` keeps that share of the observed entries out of the fit, scores their
        log predictive density :math:`\log \mathcal N(x_{nd};\, W_d m_n + \mu_d,\,
        W_d S_n W_d^\top + \psi_d)` after every E-step and returns the iterate that scored
        best, stopping ``patience`` iterations after the last improvement (the returned model
        has seen the other ``1 - holdout`` of the entries).

        :param X: ``(N, D)``; entries where ``mask`` is False are ignored (NaN allowed).
        :param mask: bool ``(N, D)``, True = observed; every column needs an observed entry.
        :param float holdout: share of the observed entries held out for early stopping
            (``0``: plain maximum likelihood, the default).
        :param int patience: iterations without a better held-out score before stopping.
        :param generator: draws the held-out entries (a fixed seed when ``None``).
        """
        X = as_data(X, "X")
        mask = torch.as_tensor(mask, device=X.device)
        if mask.shape != X.shape or mask.dtype != torch.bool:
            raise ValueError(
                f"mask must be bool {tuple(X.shape)}, got {mask.dtype} {tuple(mask.shape)}"
            )
        check_observed_finite(X, mask, "X")
        check_rows_observed(mask, "X")
        N, D = X.shape
        K = check_latent_dim(latent_dim, D)
        count = mask.sum(0)
        if (count == 0).any():
            raise ValueError(
                f"columns {(count == 0).nonzero().flatten().tolist()[:10]} are never observed"
            )
        Xz = torch.where(mask, X, 0.0)
        if not bool(torch.isfinite(Xz).all()):
            raise ValueError("X has NaN or infinite observed entries")
        if not 0 <= holdout < 1:
            raise ValueError(f"holdout must be in [0, 1), got {holdout}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        held = _hold_out(mask, holdout, generator) if holdout else None
        scored = Xz  # the held-out entries' values, for the score
        if held is not None:
            mask = mask & ~held
            count = mask.sum(0)
            Xz = torch.where(mask, X, 0.0)
        w = mask.to(X.dtype)
        mu = Xz.sum(0) / count
        var = (w * (Xz - mu) ** 2).sum(0) / count
        floor = min_psi * var.mean().clamp_min(torch.finfo(X.dtype).tiny)
        lam, V = principal_components(torch.where(mask, Xz - mu, 0.0))
        if K > V.shape[1]:
            raise ValueError(f"latent_dim = {K} exceeds the number of rows N = {N}")
        sigma2 = lam[K:].sum() / (D - K)
        W = V[:, :K] * (lam[:K] - sigma2).clamp_min(0).sqrt()
        model = cls._from_em(W, mu, torch.maximum(var - W.pow(2).sum(1), floor), count)
        history: list[float] = []
        converged = False
        bar = progress_bar(range(max_iter), desc="FA EM (missing)", progress=progress)
        n_iter = 0
        scores: list[float] = []
        best = None
        for _ in bar:
            n_iter += 1
            with torch.no_grad():
                post, ll = model.posterior_and_log_likelihood(Xz, mask)
                history.append(float(ll.mean()))
                if held is not None:
                    scores.append(_held_out_score(model, post, scored, held))
                    if best is None or scores[-1] > scores[best]:
                        best, best_model = len(scores) - 1, model
                    elif len(scores) - 1 - best >= patience:
                        converged = True
                        break
            if len(history) > 1 and history[-1] - history[-2] < tol:
                converged = True
                break
            m = post.mean
            Ezz = post.covariance_matrix + m[:, :, None] * m[:, None, :]
            ones = torch.ones(N, 1, dtype=X.dtype, device=X.device)
            Ez1 = torch.cat([m, ones], -1)  # (N, K + 1)
            Ezz1 = torch.cat(
                [torch.cat([Ezz, m[:, :, None]], -1), torch.cat([m, ones], -1)[:, None, :]], 1
            )  # (N, K + 1, K + 1)
            A = torch.einsum("nd,nij->dij", w, Ezz1)
            R = torch.einsum("nd,ni->di", w * Xz, Ez1)
            Wmu = torch.linalg.solve(A, R)  # (D, K + 1)
            pred = Ez1 @ Wmu.mT  # E[W_d z + mu_d]
            quad = torch.einsum("di,nij,dj->nd", Wmu, Ezz1, Wmu)
            resid2 = w * (Xz.pow(2) - 2 * Xz * pred + quad)
            psi = torch.maximum(resid2.sum(0) / count, floor)
            model = cls._from_em(Wmu[:, :K], Wmu[:, K], psi, count)
            bar.set_postfix(ll=f"{history[-1]:.4f}")
        bar.close()
        if not converged:
            warnings.warn(
                f"FactorAnalysis.fit_missing: EM did not converge in {max_iter} iterations",
                RuntimeWarning,
                stacklevel=2,
            )
        info = EMInfo(n_iter=n_iter, converged=converged, log_likelihood=history)
        if held is not None:
            model = best_model
            info.held_out_log_likelihood, info.best_iter = scores, best + 1
        model.fit_info = info
        return model


_OVERSAMPLE = 10  # extra vectors of the subspace iteration (Halko et al. 2011, §4.2)
_POWER = 2  # multiplications by A per fixed-point step (warm-started)
_POWER_START = 6  # and for the start, from a random block


def _top_eigenpairs(A: torch.Tensor, K: int, Q: torch.Tensor | None, power: int = _POWER):
    r"""The ``K`` leading eigenpairs of the symmetric ``A (D, D)`` by subspace iteration
    (Halko, Martinsson & Tropp 2011, Alg. 4.4 with Rayleigh–Ritz) on a block of
    ``K + 10`` vectors started from ``Q`` (a random block when ``None``): ``power``
    products with ``A``, :math:`O(D^2 K)`, instead of an :math:`O(D^3)` decomposition.
    Returns the Ritz values (descending), their vectors and the block to start from next."""
    D = A.shape[0]
    if Q is None:
        g = torch.Generator(device=A.device).manual_seed(0)
        Q = torch.randn(D, K + _OVERSAMPLE, generator=g, dtype=A.dtype, device=A.device)
    for _ in range(power):
        Q = torch.linalg.qr(A @ Q).Q
    theta, V = torch.linalg.eigh(Q.mT @ A @ Q)
    theta, V = theta.flip(0), V.flip(1)
    U = Q @ V
    return theta[:K], U[:, :K], U


def _hold_out(mask: torch.Tensor, share: float, generator) -> torch.Tensor:
    """A random ``share`` of the observed entries, never a row's or a column's last one."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    u = torch.rand(mask.shape, generator=g).to(mask.device)
    held = mask & (u < share)
    # keep one observed entry in each row and column: give back each one's first entry
    left = mask & ~held
    rows = ~left.any(1)
    cols = ~left.any(0)
    first_in_row = torch.zeros_like(held).scatter_(1, mask.int().argmax(1, keepdim=True), True)
    first_in_col = torch.zeros_like(held).scatter_(0, mask.int().argmax(0, keepdim=True), True)
    held &= ~(rows[:, None] & first_in_row) & ~(cols[None, :] & first_in_col)
    if not bool(held.any()):
        raise ValueError(f"holdout = {share} holds out no observed entry; give a larger share")
    return held


_SCORE_ENTRIES = 2**22  # numbers of the held-out variances formed at once


def _held_out_score(model, post, x, held) -> float:
    r"""Mean log predictive density of the held-out entries,
    :math:`\log \mathcal N(x_{nd}; W_d m_n + \mu_d, W_d S_n W_d^\top + \psi_d)`, with
    :math:`(m_n, S_n)` the posterior given the entries kept. Only the held-out entries'
    variances are formed, a few at a time (memory ``chunk x K x K``; all of them would cost
    ``N D K^2``)."""
    W, mu, psi = model.W, model.mu, model.psi
    n, d = held.nonzero(as_tuple=True)
    K = W.shape[1]
    chunk = max(1, _SCORE_ENTRIES // (K * K))
    S = post.covariance_matrix
    total = x.new_zeros(())
    for i in range(0, len(n), chunk):
        rows, cols = n[i : i + chunk], d[i : i + chunk]
        w = W[cols]  # (c, K)
        var = torch.einsum("ck,ckl,cl->c", w, S[rows], w) + psi[cols]
        loc = (post.mean[rows] * w).sum(-1) + mu[cols]
        lp = torch.distributions.Normal(loc, var.sqrt()).log_prob(x[rows, cols])
        total = total + lp.sum()
    return float(total / len(n))


def _unconverged(what: str, history: list[float], max_iter: int, tol: float, stacklevel: int):
    """Warn, at :meth:`FactorAnalysis.fit`'s caller, that the iterations ran out."""
    last = history[-1] - history[-2] if len(history) > 1 else float("nan")
    warnings.warn(
        f"FactorAnalysis.fit: {what} did not converge in {max_iter} iterations "
        f"(last per-datum change {last:.2e} > tol = {tol:.0e})",
        RuntimeWarning,
        stacklevel=stacklevel,
    )
