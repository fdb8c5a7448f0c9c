import functools

import brute_force
import numpy as np
import pytest
import torch

from pgm3d import COMPLETION_METHODS, PPCA, DenoisingEncoder, FactorAnalysis, complete
from pgm3d.data import quarter_mask, random_mask
from pgm3d.evaluation import imputation_mse

F64 = torch.float64


@pytest.fixture
def case():
    g = torch.Generator().manual_seed(0)
    model = FactorAnalysis.random(16, 3, generator=g, dtype=F64)
    x = model.sample(10)
    mask = brute_force.varied_mask(10, 16, g)
    return model, torch.where(mask, x, torch.nan), mask


def observed_untouched(result, x, mask):
    return torch.equal(result.x[mask], x[mask])


def test_registered_methods():
    assert {"exact", "fca", "sca", "mean"} <= set(COMPLETION_METHODS.names())


def test_exact_fills_with_the_conditional_mean(case):
    model, x, mask = case
    _, _, x_ref, _ = brute_force.posterior(model, x, mask)
    r = complete(model, x, mask, method="exact")
    assert r.method == "exact" and observed_untouched(r, x, mask)
    np.testing.assert_allclose(r.x.detach().numpy(), x_ref, rtol=1e-10, atol=1e-12)


def test_fca_uses_the_full_data_covariance(case):
    model, x, mask = case
    W, mu, psi = brute_force.params(model)
    Sigma = np.linalg.inv(np.eye(3) + W.T @ (W / psi[:, None]))
    r = complete(model, x, mask, method="fca")
    for i, v in enumerate(mask.numpy()):
        m = Sigma @ W[v].T @ ((x[i].numpy()[v] - mu[v]) / psi[v])
        np.testing.assert_allclose(r.z.mean[i].detach().numpy(), m, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(r.z.covariance_matrix[i].detach().numpy(), Sigma, atol=1e-12)
        np.testing.assert_allclose(r.x[i, ~v].detach().numpy(), (W @ m + mu)[~v], rtol=1e-10)
    assert observed_untouched(r, x, mask)


def test_sca_scales_the_precision_by_the_observed_fraction(case):
    model, x, mask = case
    W, mu, psi = brute_force.params(model)
    P = np.eye(3) + W.T @ (W / psi[:, None])
    r = complete(model, x, mask, method="sca")
    for i, v in enumerate(mask.numpy()):
        f = v.mean()
        Sigma = np.linalg.inv((1 - f) * np.eye(3) + f * P)
        m = Sigma @ W[v].T @ ((x[i].numpy()[v] - mu[v]) / psi[v])
        np.testing.assert_allclose(r.z.mean[i].detach().numpy(), m, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(r.z.covariance_matrix[i].detach().numpy(), Sigma, atol=1e-12)
    assert observed_untouched(r, x, mask)


def test_sca_and_fca_are_exact_when_everything_is_observed(case):
    model, x, _ = case
    x = torch.nan_to_num(x)
    full = torch.ones_like(x, dtype=torch.bool)
    ref = model.exact_posterior(x)
    for method in ("fca", "sca"):
        z = complete(model, x, full, method).z
        torch.testing.assert_close(z.mean, ref.mean)
        torch.testing.assert_close(z.covariance_matrix, ref.covariance_matrix)


def test_mean_imputation_fills_mu(case):
    model, x, mask = case
    r = complete(model, x, mask, method="mean")
    mu = model.mu.detach().expand_as(x)
    assert torch.equal(r.x[~mask], mu[~mask]) and observed_untouched(r, x, mask)
    torch.testing.assert_close(r.z.mean, complete(model, x, mask, "fca").z.mean)


def test_denoising_encoder_without_masking_is_the_full_data_encoder():
    g = torch.Generator().manual_seed(1)
    model = PPCA.random(12, 3, generator=g, dtype=F64)
    X = model.sample(300)

    def observe_all(shape, generator=None, device=None):
        return torch.ones(shape, dtype=torch.bool, device=device)

    de = DenoisingEncoder.fit(model, X, observe_all, masks_per_row=1, ridge=0.0)
    W, mu, psi = brute_force.params(model)
    Sigma = np.linalg.inv(np.eye(3) + W.T @ (W / psi[:, None]))
    A = Sigma @ W.T / psi
    np.testing.assert_allclose(de.weight.numpy(), A, atol=1e-8)
    np.testing.assert_allclose(de.bias.numpy(), -A @ mu, atol=1e-8)
    np.testing.assert_allclose(de.covariance.numpy(), Sigma, atol=1e-8)


def test_denoising_encoder_is_least_squares_on_the_sampled_masks():
    g = torch.Generator().manual_seed(2)
    model = FactorAnalysis.random(10, 2, generator=g, dtype=F64)
    X = model.sample(200)
    sampler = functools.partial(random_mask, p_missing=0.4)
    de = DenoisingEncoder.fit(
        model, X, sampler, masks_per_row=3, ridge=0.0, generator=torch.Generator().manual_seed(7)
    )
    # replay the same masks and solve the regression directly
    gen = torch.Generator().manual_seed(7)
    mu = model.mu.detach()
    F = torch.cat([torch.where(sampler(X.shape, generator=gen), X, mu) for _ in range(3)])
    F = torch.cat([F, torch.ones(len(F), 1, dtype=F64)], 1).numpy()
    T = model.exact_posterior(X).mean.detach().repeat(3, 1).numpy()
    beta, *_ = np.linalg.lstsq(F, T, rcond=None)
    np.testing.assert_allclose(de.weight.numpy(), beta[:-1].T, rtol=1e-7, atol=1e-9)
    resid = T - F @ beta
    Sigma = np.linalg.inv(model.full_precision().detach().numpy())
    np.testing.assert_allclose(
        de.covariance.numpy(), Sigma + resid.T @ resid / len(F), rtol=1e-6, atol=1e-9
    )
    mask = sampler(X.shape, generator=gen)
    x = torch.where(mask, X, torch.nan)
    r = complete(model, x, mask, de)
    assert r.method == "de" and observed_untouched(r, x, mask)
    loc = torch.where(mask, X, mu) @ de.weight.T + de.bias
    torch.testing.assert_close(r.z.mean, loc)
    torch.testing.assert_close(r.x[~mask], model.decode(loc).mean[~mask])


def test_orderings_on_model_generated_data():
    """On data the model generated, exact inference is Bayes-optimal for squared error, and the
    approximations rank as in the thesis: exact < SCA < FCA < mean."""
    g = torch.Generator().manual_seed(3)
    truth = PPCA.random(64, 6, sigma2=0.5, generator=g, dtype=F64)
    X = truth.sample(3000)
    Xtr, Xte = X[:2400], X[2400:]
    model = PPCA.fit(Xtr, latent_dim=6)
    for sampler in (
        functools.partial(random_mask, p_missing=0.5),
        functools.partial(quarter_mask, image_shape=(8, 8)),
    ):
        de = DenoisingEncoder.fit(model, Xtr, sampler, generator=g)
        mask = sampler(Xte.shape, generator=g)
        mse = {
            name: imputation_mse(Xte, complete(model, Xte, mask, m).x, mask).mean
            for name, m in [
                ("mean", "mean"),
                ("fca", "fca"),
                ("sca", "sca"),
                ("de", de),
                ("exact", "exact"),
            ]
        }
        assert mse["exact"] < mse["sca"] < mse["fca"] < mse["mean"], mse
        assert mse["exact"] < mse["de"] < mse["fca"], mse


# ---------------------------------------------------------------------------- bad input
def test_unknown_method_lists_the_valid_ones(case):
    model, x, mask = case
    with pytest.raises(ValueError, match=r"unknown completion method 'nope'.*exact.*sca"):
        complete(model, x, mask, method="nope")
    with pytest.raises(ValueError, match="name or a callable"):
        complete(model, x, mask, method=3)


def test_methods_reject_models_without_the_interface(case):
    _, x, mask = case

    class NotLinear(torch.nn.Module):
        data_dim = 16

    for method in ("exact", "fca", "sca", "mean"):
        with pytest.raises(ValueError, match=f"{method}.*NotLinear lacks"):
            complete(NotLinear(), torch.nan_to_num(x), mask, method)


def test_bad_x_and_mask(case):
    model, x, mask = case
    with pytest.raises(ValueError, match=r"observed entry \(row 1, column 1, counting from 1"):
        complete(model, x, ~mask)
    with pytest.raises(ValueError, match="mask must have the shape"):
        complete(model, x, mask[:, :5])
    with pytest.raises(ValueError, match=r"dtype torch\.bool"):
        complete(model, x, mask.double())
    with pytest.raises(ValueError, match="x must be 2-D"):
        complete(model, x[0], mask[0])


@pytest.mark.parametrize("method", ["exact", "fca", "sca", "mean"])
def test_a_row_with_nothing_observed_does_not_crash(method):
    g = torch.Generator().manual_seed(4)
    model = FactorAnalysis.random(8, 2, generator=g, dtype=F64)
    x = torch.full((2, 8), torch.nan, dtype=F64)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    r = complete(model, x, mask, method)
    assert torch.isfinite(r.x).all()
    if method == "exact":
        torch.testing.assert_close(r.z.mean, torch.zeros(2, 2, dtype=F64))
        torch.testing.assert_close(r.x, model.mu.detach().expand(2, 8))


def test_denoising_encoder_checks_its_inputs():
    g = torch.Generator().manual_seed(5)
    model = PPCA.random(6, 2, generator=g, dtype=F64)
    X = model.sample(20)
    with pytest.raises(ValueError, match="mask_sampler returned"):
        DenoisingEncoder.fit(model, X, lambda shape, generator=None, device=None: torch.ones(3))
    de = DenoisingEncoder.fit(model, X, functools.partial(random_mask, p_missing=0.3))
    with pytest.raises(ValueError, match=r"DenoisingEncoder\.to"):
        de(model, X.float(), torch.ones(20, 6, dtype=torch.bool))
    assert de.to(torch.float32).weight.dtype == torch.float32


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["exact", "fca", "sca", "mean"])
def test_methods_follow_the_device_of_their_inputs(method):
    g = torch.Generator().manual_seed(6)
    model = FactorAnalysis.random(30, 4, generator=g, dtype=F64)
    x = model.sample(50)
    mask = random_mask(x.shape, 0.5, generator=g)
    cpu = complete(model, x, mask, method)
    gpu = complete(model.to("cuda"), x.cuda(), mask.cuda(), method)
    assert gpu.x.device.type == "cuda"
    torch.testing.assert_close(gpu.x.cpu(), cpu.x)
    torch.testing.assert_close(gpu.z.mean.cpu(), cpu.z.mean)
