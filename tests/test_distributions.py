import torch
from torch.distributions import MultivariateNormal, kl_divergence

from pgm3d.distributions import PrecisionMultivariateNormal

F64 = torch.float64


def random_case(seed=0, B=5, K=3):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(B, K, K, generator=g, dtype=F64)
    P = A @ A.mT + torch.eye(K, dtype=F64)
    loc = torch.randn(B, K, generator=g, dtype=F64)
    return loc, P


def test_matches_torch_precision_parameterisation():
    loc, P = random_case()
    ours = PrecisionMultivariateNormal(loc, torch.linalg.cholesky(P))
    ref = MultivariateNormal(loc, precision_matrix=P)
    z = torch.randn(4, 5, 3, dtype=F64)
    torch.testing.assert_close(ours.log_prob(z), ref.log_prob(z))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    torch.testing.assert_close(ours.covariance_matrix, ref.covariance_matrix)
    torch.testing.assert_close(ours.precision_matrix, P)
    torch.testing.assert_close(ours.variance, ref.variance)
    torch.testing.assert_close(ours.scale_tril, ref.scale_tril)
    torch.testing.assert_close(kl_divergence(ours, ref), torch.zeros(5, dtype=F64))


def test_rsample_has_the_right_moments_and_gradients():
    loc, P = random_case(1, B=2)
    loc.requires_grad_(True)
    d = PrecisionMultivariateNormal(loc, torch.linalg.cholesky(P))
    z = d.rsample((200000,))
    assert z.shape == (200000, 2, 3)
    emp = torch.stack([torch.cov(z[:, b].mT) for b in range(2)])
    assert (emp - d.covariance_matrix).abs().max() < 0.02 * P.inverse().abs().max() + 1e-3
    z.sum().backward()
    torch.testing.assert_close(loc.grad, torch.full_like(loc, 200000.0))


def test_expand_keeps_the_factor_lazy_and_broadcasts():
    loc, P = random_case(2, B=1)
    d = PrecisionMultivariateNormal(loc[0], torch.linalg.cholesky(P[0]))
    e = d.expand((4, 6))
    assert e.batch_shape == (4, 6)
    assert "_unbroadcasted_scale_tril" not in e.__dict__
    assert e.log_prob(torch.zeros(3, dtype=F64)).shape == (4, 6)
    assert e.sample((2,)).shape == (2, 4, 6, 3)


def test_shared_factors_through_an_index_match_per_row_factors():
    _, P = random_case(3, B=3)
    L = torch.linalg.cholesky(P)
    index = torch.tensor([2, 0, 0, 1, 2])
    rows = torch.randn(5, 3, dtype=F64)
    shared = PrecisionMultivariateNormal(rows, L, index)
    per_row = PrecisionMultivariateNormal(rows, L[index])
    z = torch.randn(7, 5, 3, dtype=F64)
    torch.testing.assert_close(shared.entropy(), per_row.entropy())
    torch.testing.assert_close(shared.covariance_matrix, per_row.covariance_matrix)
    torch.testing.assert_close(shared.scale_tril, per_row.scale_tril)
    assert "_unbroadcasted_precision_tril" not in shared.__dict__  # nothing gathered yet
    torch.testing.assert_close(shared.log_prob(z), per_row.log_prob(z))
    assert shared.expand((2, 5)).log_prob(z[:2]).shape == (2, 5)


def test_validation_rejects_bad_factors():
    import pytest

    _, P = random_case(4, B=2)
    L = torch.linalg.cholesky(P)
    with pytest.raises(ValueError, match="lower triangular"):
        PrecisionMultivariateNormal(torch.zeros(3, dtype=F64), L[0].mT, validate_args=True)
    with pytest.raises(ValueError, match="does not match"):
        PrecisionMultivariateNormal(torch.zeros(2, dtype=F64), L[0])


def test_samples_and_log_densities_are_the_same_for_shared_expanded_and_per_row_factors():
    """Sample dims (and rows sharing one factor) are solved as columns of one triangular
    system; the draws and densities must equal the row-by-row computation."""
    loc, P = random_case(4, B=1, K=4)
    L = torch.linalg.cholesky(P[0])
    shared = PrecisionMultivariateNormal(loc[0], L).expand((3, 6))
    per_row = PrecisionMultivariateNormal(loc[0].expand(3, 6, 4), L.expand(3, 6, 4, 4))
    z = torch.randn(5, 3, 6, 4, dtype=F64)
    torch.testing.assert_close(shared.log_prob(z), per_row.log_prob(z))
    torch.testing.assert_close(shared.log_prob(z[0, 0]), per_row.log_prob(z[0, 0]))
    for d in (shared, per_row):
        torch.manual_seed(0)
        eps = torch.randn(5, 3, 6, 4, dtype=F64)
        expected = loc[0] + torch.linalg.solve_triangular(
            L.mT.expand(5, 3, 6, 4, 4), eps.unsqueeze(-1), upper=True
        ).squeeze(-1)
        torch.manual_seed(0)
        torch.testing.assert_close(d.rsample((5,)), expected)
