import warnings

import brute_force
import numpy as np
import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO
from sklearn.decomposition import FactorAnalysis as SkFA

from pgm3d.models import MODELS, PPCA, FactorAnalysis

F64 = torch.float64


def make_model(kind, D=12, K=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return MODELS[kind].random(D, K, generator=g, dtype=F64)


@pytest.mark.parametrize("kind", ["fa", "ppca"])
def test_exact_posterior_matches_joint_gaussian_conditioning(kind):
    model = make_model(kind)
    g = torch.Generator().manual_seed(1)
    x = model.sample(9)
    mask = brute_force.varied_mask(9, 12, g)
    x = torch.where(mask, x, torch.nan)  # missing entries hold NaN: must be ignored
    mean, cov, _, _ = brute_force.posterior(model, x, mask)
    post = model.exact_posterior(x, mask)
    assert post.batch_shape == (9,) and post.event_shape == (3,)
    np.testing.assert_allclose(post.mean.detach().numpy(), mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(post.covariance_matrix.detach().numpy(), cov, atol=1e-12)


@pytest.mark.parametrize("kind", ["fa", "ppca"])
def test_log_likelihood_matches_scipy(kind):
    model = make_model(kind, seed=3)
    g = torch.Generator().manual_seed(4)
    x = model.sample(9)
    mask = brute_force.varied_mask(9, 12, g)
    *_, ll = brute_force.posterior(model, x, mask)
    np.testing.assert_allclose(model.log_likelihood(x, mask).detach().numpy(), ll, rtol=1e-10)
    full = brute_force.posterior(model, x, torch.ones_like(mask))[3]
    np.testing.assert_allclose(model.log_likelihood(x).detach().numpy(), full, rtol=1e-10)


def test_row_that_observes_nothing_gets_the_prior():
    model = make_model("fa")
    x = model.sample(2)
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[1] = True
    post = model.exact_posterior(x, mask)
    torch.testing.assert_close(post.mean[0], torch.zeros(3, dtype=F64))
    torch.testing.assert_close(post.covariance_matrix[0], torch.eye(3, dtype=F64))
    assert model.log_likelihood(x, mask)[0].item() == 0.0


def test_rows_sharing_a_pattern_share_one_factor_and_match_rowwise():
    model = make_model("fa", D=30, K=4)
    g = torch.Generator().manual_seed(2)
    patterns = torch.rand(3, 30, generator=g) < 0.5
    mask = patterns[torch.tensor([0, 1, 0, 2, 1, 0])]
    x = model.sample(6)
    P, inverse = model.precision(mask)
    assert P.shape == (3, 4, 4)
    assert torch.equal(inverse[[0, 2, 5]], inverse[[0, 0, 0]])
    batched = model.exact_posterior(x, mask)
    for i in range(6):
        single = model.exact_posterior(x[i : i + 1], mask[i : i + 1])
        torch.testing.assert_close(batched.mean[i], single.mean[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("p_missing", [0.03, 0.5, 0.97])
def test_sparse_dense_build_and_downdate_paths_agree(p_missing):
    model = make_model("fa", D=40, K=5)
    g = torch.Generator().manual_seed(5)
    mask = torch.rand(20, 40, generator=g) >= p_missing
    dense, inv_d = model.precision(mask, sparse=False)
    sparse, inv_s = model.precision(mask, sparse=True)
    torch.testing.assert_close(dense[inv_d], sparse[inv_s], rtol=1e-12, atol=1e-10)
    W, _, psi = brute_force.params(model)
    for i, v in enumerate(mask.numpy()):
        ref = np.eye(5) + W[v].T @ (W[v] / psi[v, None])
        np.testing.assert_allclose(dense[inv_d[i]].detach().numpy(), ref, rtol=1e-10, atol=1e-10)


def test_fa_log_likelihood_agrees_with_sklearn():
    model = make_model("fa", D=15, K=4, seed=7)
    x = model.sample(50)
    sk = SkFA(n_components=4)
    sk.components_ = model.W.detach().numpy().T
    sk.noise_variance_ = model.psi.detach().numpy()
    sk.mean_ = model.mu.detach().numpy()
    ref = sk.score_samples(x.numpy())
    ours = model.log_likelihood(x).detach().numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_elbo_with_exact_guide_equals_log_likelihood():
    # the guide is the exact posterior, so log p(x, z) - log q(z) = log p(x_v) for every z
    model = make_model("fa")
    g = torch.Generator().manual_seed(8)
    x = model.sample(7)
    mask = brute_force.varied_mask(7, 12, g)
    x = torch.where(mask, x, torch.nan)
    elbo = Trace_ELBO(num_particles=5, vectorize_particles=True)
    loss = elbo.loss(model.model, model.guide, x, mask)
    ll = model.log_likelihood(x, mask).sum().item()
    assert loss == pytest.approx(-ll, rel=1e-10)


def test_masked_nan_does_not_poison_gradients():
    model = make_model("ppca")
    x = model.sample(4)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[0, :3] = False
    x[0, :3] = torch.nan
    loss = Trace_ELBO().differentiable_loss(model.model, model.guide, x, mask)
    loss.backward()
    for p in model.parameters():
        assert torch.isfinite(p.grad).all()


def test_model_trace_sites_and_shapes():
    model = make_model("fa")
    x = model.sample(5)
    tr = pyro.poutine.trace(model.model).get_trace(x)
    assert tr.nodes["z"]["value"].shape == (5, 3)
    assert tr.nodes["x"]["is_observed"]
    assert tr.nodes["x"]["fn"].event_shape == (12,)


def test_log_likelihood_gradient_matches_dense_gaussian():
    model = make_model("fa", D=8, K=2, seed=9)
    x = model.sample(3)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[0, :4] = False
    model.log_likelihood(x, mask).sum().backward()
    ours = model.W.grad.clone()
    model.W.grad = None
    C = model.marginal_covariance()
    total = 0.0
    for xi, v in zip(x, mask, strict=True):
        total = total + torch.distributions.MultivariateNormal(model.mu[v], C[v][:, v]).log_prob(
            xi[v]
        )
    total.backward()
    torch.testing.assert_close(ours, model.W.grad, rtol=1e-9, atol=1e-11)


def test_sample_moments_match_marginal_covariance():
    model = make_model("fa", D=6, K=2)
    x = model.sample(40000)
    C = model.marginal_covariance().detach()
    emp = torch.cov(x.mT)
    assert (emp - C).abs().max() < 0.1 * C.abs().max()
    assert (x.mean(0) - model.mu.detach()).abs().max() < 0.05


def test_float32_in_float32_out():
    model = FactorAnalysis.random(
        10, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float32
    )
    x = model.sample(4)
    mask = torch.rand(4, 10) < 0.5
    assert model.exact_posterior(x, mask).mean.dtype == torch.float32
    assert model.log_likelihood(x, mask).dtype == torch.float32


# ---------------------------------------------------------------------------- fitting
def test_ppca_fit_is_tipping_bishop_closed_form():
    g = torch.Generator().manual_seed(0)
    truth = PPCA.random(10, 3, sigma2=0.2, generator=g, dtype=F64)
    X = truth.sample(500)
    model = PPCA.fit(X, latent_dim=3)
    Xn = X.numpy()
    lam, U = np.linalg.eigh(np.cov(Xn.T, bias=True))
    lam, U = lam[::-1], U[:, ::-1]
    sigma2 = lam[3:].mean()
    assert model.sigma2.item() == pytest.approx(sigma2, rel=1e-10)
    WWt = U[:, :3] @ np.diag(lam[:3] - sigma2) @ U[:, :3].T
    np.testing.assert_allclose((model.W @ model.W.T).detach().numpy(), WWt, atol=1e-10)
    np.testing.assert_allclose(model.mu.detach().numpy(), Xn.mean(0), atol=1e-12)


def test_ppca_explained_variance_picks_smallest_sufficient_k():
    g = torch.Generator().manual_seed(1)
    X = PPCA.random(20, 5, sigma2=0.05, generator=g, dtype=F64).sample(400)
    lam = np.linalg.eigvalsh(np.cov(X.numpy().T, bias=True))[::-1]
    ratio = np.cumsum(lam) / lam.sum()
    for target in (0.5, 0.8, 0.9, 0.99):
        K = PPCA.fit(X, explained_variance=target).latent_dim
        assert ratio[K - 1] >= target and (K == 1 or ratio[K - 2] < target)


def test_fa_em_is_monotone_and_matches_sklearn_optimum():
    g = torch.Generator().manual_seed(2)
    truth = FactorAnalysis.random(10, 3, generator=g, dtype=F64)
    X = truth.sample(2000)
    model = FactorAnalysis.fit(X, 3, max_iter=2000, tol=1e-10)
    hist = np.array(model.fit_info.log_likelihood)
    assert model.fit_info.converged
    assert np.all(np.diff(hist) > -1e-10)
    ours = model.log_likelihood(X).mean().item()
    assert ours == pytest.approx(hist[-1], abs=1e-9)
    sk = SkFA(n_components=3, tol=1e-8, max_iter=5000).fit(X.numpy())
    assert ours >= sk.score(X.numpy()) - 1e-4
    C = model.marginal_covariance().detach()
    assert (C - truth.marginal_covariance().detach()).abs().max() < 0.15 * C.abs().max()


def test_fa_fixed_point_and_em_reach_one_optimum_the_fixed_point_sooner():
    g = torch.Generator().manual_seed(5)
    X = FactorAnalysis.random(12, 3, generator=g, dtype=F64).sample(1000)
    eig = FactorAnalysis.fit(X, 3, tol=1e-10, max_iter=5000)
    em = FactorAnalysis.fit(X, 3, tol=1e-10, max_iter=5000, method="em")
    assert eig.fit_info.converged and em.fit_info.converged
    assert np.all(np.diff(eig.fit_info.log_likelihood) > -1e-12)  # SQUAREM keeps it monotone
    a, b = eig.log_likelihood(X).mean().item(), em.log_likelihood(X).mean().item()
    assert a == pytest.approx(b, abs=1e-6)
    assert a == pytest.approx(eig.fit_info.log_likelihood[-1], abs=1e-9)
    assert torch.allclose(eig.marginal_covariance(), em.marginal_covariance(), atol=1e-4)
    assert eig.fit_info.n_iter < em.fit_info.n_iter
    with pytest.raises(ValueError, match="method must be 'eig' or 'em'"):
        FactorAnalysis.fit(X, 3, method="svd")


def test_fa_fixed_point_on_many_columns_takes_top_eigenpairs_to_the_same_optimum(monkeypatch):
    """D = 60, K = 3: the fixed point computes only the top K eigenpairs (subspace iteration,
    warm-started); it reaches the optimum that full decompositions reach, monotonely."""
    import pgm3d.models.factor_analysis as fa_module

    g = torch.Generator().manual_seed(6)
    X = FactorAnalysis.random(60, 3, generator=g, dtype=F64).sample(800, generator=g)
    top = FactorAnalysis.fit(X, 3, tol=1e-10, max_iter=5000)
    monkeypatch.setattr(fa_module, "_OVERSAMPLE", 100)  # 2 (K + 100) > D: full eigh
    full = FactorAnalysis.fit(X, 3, tol=1e-10, max_iter=5000)
    assert top.fit_info.converged and full.fit_info.converged
    assert np.all(np.diff(top.fit_info.log_likelihood) > -1e-12)
    a, b = top.log_likelihood(X).mean().item(), full.log_likelihood(X).mean().item()
    assert a == pytest.approx(b, abs=1e-7)
    assert a == pytest.approx(top.fit_info.log_likelihood[-1], abs=1e-9)  # the formula is exact
    assert torch.allclose(top.marginal_covariance(), full.marginal_covariance(), atol=1e-5)
    # the eigen-solver itself: a random symmetric matrix with a gap after its top 3
    A = torch.randn(50, 50, generator=g, dtype=F64)
    A = A @ A.mT / 50 + torch.diag(torch.tensor([30.0, 20.0, 10.0] + [0.0] * 47, dtype=F64))
    lam, U, _ = fa_module._top_eigenpairs(A, 3, None, power=30)
    exact = torch.linalg.eigvalsh(A).flip(0)[:3]
    torch.testing.assert_close(lam, exact, rtol=1e-10, atol=0)
    torch.testing.assert_close(U.mT @ U, torch.eye(3, dtype=F64), rtol=0, atol=1e-12)


def test_fa_fit_survives_a_constant_column():
    X = FactorAnalysis.random(8, 2, generator=torch.Generator().manual_seed(4), dtype=F64).sample(
        200
    )
    X[:, 3] = 0.5  # e.g. a pixel that is blank in every image
    model = FactorAnalysis.fit(X, 2)
    assert torch.isfinite(model.log_likelihood(X)).all()
    assert model.psi[3] > 0 and model.W[3].abs().max() < 1e-6


def test_fa_em_warns_when_it_runs_out_of_iterations():
    X = FactorAnalysis.random(8, 2, generator=torch.Generator().manual_seed(3), dtype=F64).sample(
        100
    )
    with pytest.warns(RuntimeWarning, match="did not converge"):
        model = FactorAnalysis.fit(X, 2, max_iter=2, tol=0.0)
    assert not model.fit_info.converged


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [FactorAnalysis, PPCA])
def test_fit_rejects_bad_latent_dim_and_data(cls):
    X = torch.randn(30, 5, dtype=F64)
    for bad in (0, 5, 6, 2.0):
        with pytest.raises(ValueError, match="latent_dim"):
            cls.fit(X, latent_dim=bad)
    with pytest.raises(ValueError, match="2-D"):
        cls.fit(torch.randn(30, dtype=F64), latent_dim=2)
    Xn = X.clone()
    Xn[0, 0] = torch.nan
    with pytest.raises(ValueError, match="NaN"):
        cls.fit(Xn, latent_dim=2)


def test_ppca_fit_needs_exactly_one_size_argument():
    X = torch.randn(30, 5, dtype=F64)
    with pytest.raises(ValueError, match="exactly one"):
        PPCA.fit(X)
    with pytest.raises(ValueError, match="exactly one"):
        PPCA.fit(X, latent_dim=2, explained_variance=0.9)
    with pytest.raises(ValueError, match="explained_variance"):
        PPCA.fit(X, explained_variance=1.5)


def test_inference_rejects_bad_inputs_by_name():
    model = make_model("fa")
    x = model.sample(3)
    with pytest.raises(ValueError, match="x must be 2-D"):
        model.exact_posterior(x[0])
    with pytest.raises(ValueError, match="mask must have the shape"):
        model.exact_posterior(x, torch.ones(3, 11, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask must have dtype torch\.bool"):
        model.log_likelihood(x, torch.ones(3, 12))
    with pytest.raises(ValueError, match="observed entry"):
        bad = x.clone()
        bad[1, 2] = torch.inf
        model.log_likelihood(bad)
    with pytest.raises(ValueError, match="columns"):
        model.exact_posterior(torch.randn(3, 11, dtype=F64))
    with pytest.raises(ValueError, match=r"float32.*model.to"):
        model.exact_posterior(x.float())
    with pytest.raises(ValueError, match="psi must be positive"):
        FactorAnalysis(torch.randn(4, 2), torch.zeros(4), -torch.ones(4))


def test_ppca_fit_missing_matches_the_closed_form_and_never_decreases():
    import itertools

    from pgm3d.models import PPCA

    g = torch.Generator().manual_seed(0)
    truth = PPCA.random(10, 2, sigma2=0.2, generator=g, dtype=torch.float64)
    X = truth.sample(1500, generator=g)
    full = PPCA.fit(X, 2)
    em = PPCA.fit_missing(X, torch.ones_like(X, dtype=torch.bool), 2, tol=1e-10, max_iter=2000)
    assert isinstance(em, PPCA)
    # the closed form is the maximum; EM on complete rows reaches it
    assert float(em.log_likelihood(X).mean()) == pytest.approx(
        float(full.log_likelihood(X).mean()), abs=1e-4
    )
    assert float(em.sigma2) == pytest.approx(float(full.sigma2), rel=1e-3)
    mask = torch.rand(X.shape, generator=g) < 0.6
    partial = PPCA.fit_missing(torch.where(mask, X, torch.nan), mask, 2)
    history = partial.fit_info.log_likelihood
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(history))
    assert float(partial.sigma2) == pytest.approx(0.2, rel=0.1)


def test_held_out_score_is_the_exact_conditional_density_of_the_held_entries(monkeypatch):
    import pgm3d.models.factor_analysis as fa_module
    from pgm3d.models.factor_analysis import _held_out_score, _hold_out

    g = torch.Generator().manual_seed(3)
    model = FactorAnalysis.random(7, 2, generator=g, dtype=torch.float64)
    x = model.sample(40, generator=g)
    mask = torch.rand(x.shape, generator=g) < 0.7
    held = _hold_out(mask, 0.2, g)
    assert not (held & ~mask).any()  # held entries are observed ones
    kept = mask & ~held
    assert kept.any(1).all() and kept.any(0).all()  # no row or column loses its last entry
    # log p(x_h | x_kept) one entry at a time: the marginal with the entry minus without it
    want = []
    for n, d in held.nonzero().tolist():
        with_d = kept[n].clone()
        with_d[d] = True
        with torch.no_grad():
            pair = model.log_likelihood(x[n : n + 1], with_d[None]) - model.log_likelihood(
                x[n : n + 1], kept[n : n + 1]
            )
        want.append(pair.item())
    post = model.exact_posterior(x, kept)
    monkeypatch.setattr(fa_module, "_SCORE_ENTRIES", 12)  # three entries at a time (K = 2)
    got = _held_out_score(model, post, x, held)
    assert got == pytest.approx(sum(want) / len(want), rel=1e-10)


@pytest.mark.parametrize("name", ["PPCA", "FactorAnalysis"])
def test_fit_missing_stops_early_where_maximum_likelihood_overfits(name):
    import pgm3d.models as models

    cls = getattr(models, name)
    g = torch.Generator().manual_seed(0)
    truth = models.PPCA.random(12, 3, sigma2=0.3, generator=g, dtype=torch.float64)
    X = truth.sample(100, generator=g)
    # five entries a row observed and K = 6: W z_n can fit every row exactly, so the noise
    # heads to zero and maximum likelihood overfits
    mask = torch.rand(X.shape, generator=g).argsort(1) < 5
    test = truth.sample(300, generator=g)
    test_mask = torch.rand(test.shape, generator=g) < 0.5
    data = torch.where(mask, X, torch.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        plain = cls.fit_missing(data, mask, 6, max_iter=300)
    early = cls.fit_missing(data, mask, 6, max_iter=300, holdout=0.1, patience=5,
                            generator=torch.Generator().manual_seed(1))  # fmt: skip
    info = early.fit_info
    assert info.converged and info.best_iter < info.n_iter <= info.best_iter + 5
    assert info.held_out_log_likelihood[info.best_iter - 1] == max(info.held_out_log_likelihood)
    assert float(early.psi.min()) > 10 * float(plain.psi.min())

    def error(model):
        filled = model.exact_posterior(test, test_mask).mean @ model.W.mT + model.mu
        return float(((filled - test) ** 2)[~test_mask].mean())

    assert error(early) < error(plain)
    assert float(early.log_likelihood(test, test_mask).mean()) > float(
        plain.log_likelihood(test, test_mask).mean()
    )


def test_fit_missing_rejects_bad_early_stopping_settings():
    x = torch.randn(20, 4, dtype=torch.float64)
    mask = torch.ones_like(x, dtype=torch.bool)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="holdout must be in"):
            FactorAnalysis.fit_missing(x, mask, 1, holdout=bad)
    with pytest.raises(ValueError, match="patience must be"):
        FactorAnalysis.fit_missing(x, mask, 1, holdout=0.1, patience=0)
    with pytest.raises(ValueError, match="holds out no observed entry"):
        FactorAnalysis.fit_missing(x, mask, 1, holdout=1e-9)


def test_posterior_and_log_likelihood_share_one_factorisation_and_agree():
    g = torch.Generator().manual_seed(8)
    model = FactorAnalysis.random(6, 2, generator=g, dtype=F64)
    x = model.sample(9, generator=g)
    mask = torch.rand(x.shape, generator=g) < 0.6
    post, ll = model.posterior_and_log_likelihood(x, mask)
    torch.testing.assert_close(ll, model.log_likelihood(x, mask), rtol=0, atol=0)
    alone = model.exact_posterior(x, mask)
    torch.testing.assert_close(post.mean, alone.mean, rtol=0, atol=0)
    torch.testing.assert_close(post.covariance_matrix, alone.covariance_matrix, rtol=0, atol=0)
