"""Reference computations by brute-force conditioning of the joint Gaussian (numpy, float64).

Independent of pgm3d's precision-form formulas: the joint of (z, x_v) is
N([0, mu_v], [[I, W_v^T], [W_v, C_vv]]) with C = W W^T + Psi, and everything below is read
off it with dense inverses.
"""

import numpy as np
import torch
from scipy.stats import multivariate_normal


def params(model):
    W = model.W.detach().cpu().double().numpy()
    mu = model.mu.detach().cpu().double().numpy()
    psi = model.psi.detach().cpu().double().numpy()
    return W, mu, psi


def posterior(model, x, mask):
    """Per-row E[z | x_v], Cov[z | x_v], E[x | x_v] (observed entries kept), log p(x_v)."""
    W, mu, psi = params(model)
    x = x.detach().cpu().double().numpy()
    mask = mask.cpu().numpy()
    C = W @ W.T + np.diag(psi)
    K = W.shape[1]
    means, covs, xs, lls = [], [], [], []
    for xi, v in zip(x, mask, strict=True):
        m = ~v
        if v.any():
            Cvv_inv = np.linalg.inv(C[np.ix_(v, v)])
            r = xi[v] - mu[v]
            means.append(W[v].T @ Cvv_inv @ r)
            covs.append(np.eye(K) - W[v].T @ Cvv_inv @ W[v])
            xf = xi.copy()
            xf[m] = mu[m] + C[np.ix_(m, v)] @ Cvv_inv @ r
            lls.append(multivariate_normal(mu[v], C[np.ix_(v, v)]).logpdf(xi[v]))
        else:
            means.append(np.zeros(K))
            covs.append(np.eye(K))
            xf = mu.copy()
            lls.append(0.0)
        xs.append(xf)
    return np.array(means), np.array(covs), np.array(xs), np.array(lls)


def varied_mask(n, d, generator, dtype=torch.bool):
    """Masks with per-row observed fractions spread over (0, 1), plus an all-missing and an
    all-observed row, so both the build and the downdate paths are exercised."""
    p = torch.linspace(0.05, 0.95, n)[:, None]
    mask = torch.rand(n, d, generator=generator) < p
    mask[0] = False
    mask[-1] = True
    return mask
