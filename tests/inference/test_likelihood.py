import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from pgm3d import FactorAnalysis
from pgm3d.inference import likelihood, log_likelihood
from pgm3d.inference.trace import LogWeights

F64 = torch.float64


@pytest.fixture
def fa():
    return FactorAnalysis.random(8, 2, generator=torch.Generator().manual_seed(0), dtype=F64)


def mean_field_guide(fa):
    """The exact posterior's marginals, 1.5 times wider and without their correlations: a
    proposal that covers the posterior but is not exact, so the estimate is below log p(x)."""

    def guide(x, mask=None):
        post = fa.exact_posterior(x, mask)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(post.mean, 1.5 * post.variance.sqrt()).to_event(1))

    return guide


@pytest.mark.parametrize("K", [1, 7, 100])
def test_exact_guide_gives_the_exact_log_likelihood_for_every_k(fa, K):
    x = fa.sample(20, generator=torch.Generator().manual_seed(1))
    mask = torch.rand(20, 8, generator=torch.Generator().manual_seed(2)) < 0.5
    est = log_likelihood(fa, x, mask, num_samples=K, chunk_size=3)
    torch.testing.assert_close(est, fa.log_likelihood(x, mask), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(
        log_likelihood(fa, x, mask, method="exact"), fa.log_likelihood(x, mask)
    )


def test_iwae_estimate_rises_with_k_towards_the_exact_value(fa):
    """Burda et al. 2016: E[L_K] is non-decreasing in K and tends to log p(x)."""
    x = fa.sample(300, generator=torch.Generator().manual_seed(3))
    exact = fa.log_likelihood(x).mean().item()
    guide = mean_field_guide(fa)
    pyro.set_rng_seed(0)
    gaps = [
        exact - log_likelihood(fa, x, num_samples=K, guide=guide).mean().item()
        for K in (1, 10, 100, 1000)
    ]
    assert all(a > b for a, b in itertools.pairwise(gaps)), gaps
    assert gaps[0] > 0.1 and -2e-3 < gaps[-1] < 0.05 * gaps[0], gaps


def test_streaming_log_sum_exp_over_chunks_is_exact(fa, monkeypatch):
    x = fa.sample(3, generator=torch.Generator().manual_seed(4))
    weights = torch.randn(1000, 3, dtype=F64, generator=torch.Generator().manual_seed(5)) * 30
    taken = iter(range(0, 1000, 64))

    def fake(model, guide, x, mask, k, nesting, **_):
        start = next(taken)
        zero = torch.zeros(k, 3, dtype=F64)
        return LogWeights(weights[start : start + k], zero, zero, None, None)

    monkeypatch.setattr(likelihood, "log_weights", fake)
    est = log_likelihood(fa, x, num_samples=1000, chunk_size=64)
    torch.testing.assert_close(est, torch.logsumexp(weights, 0) - math.log(1000))


def test_bad_arguments(fa):
    x = fa.sample(2)
    with pytest.raises(ValueError, match=r"num_samples \(K\) must be an int >= 1"):
        log_likelihood(fa, x, num_samples=0)
    with pytest.raises(ValueError, match="method"):
        log_likelihood(fa, x, method="laplace")
    with pytest.raises(ValueError, match="chunk_size"):
        log_likelihood(fa, x, chunk_size=0)
    bad = x.clone()
    bad[0, 0] = torch.inf
    with pytest.raises(ValueError, match="observed entry"):
        log_likelihood(fa, bad)

    class NoClosedForm(torch.nn.Module):
        data_dim = 8

    with pytest.raises(ValueError, match="closed form"):
        log_likelihood(NoClosedForm(), x, method="exact")
