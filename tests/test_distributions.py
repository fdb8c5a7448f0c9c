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
