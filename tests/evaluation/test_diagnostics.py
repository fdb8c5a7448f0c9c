import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from pgm3d import FactorAnalysis, complete
from pgm3d.data import random_mask
from pgm3d.evaluation import (
    active_units,
    evaluate_posteriors,
    guide_from,
    kl_to_exact,
    psis_khat,
    sbc,
)

F64 = torch.float64


@pytest.fixture
def fa():
    return FactorAnalysis.random(8, 2, generator=torch.Generator().manual_seed(0), dtype=F64)


def scaled_guide(fa, factor):
    """The exact posterior with its covariance scaled by ``factor**2``."""

    def guide(x, mask=None):
        post = fa.exact_posterior(x, mask)
        q = dist.MultivariateNormal(post.mean, scale_tril=factor * post.scale_tril)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", q)

    return guide


def test_psis_khat_separates_a_good_from_an_over_narrow_guide(fa):
    """Yao et al. 2018: k-hat < 0.5 for a proposal with heavy enough tails (the exact
    posterior, or one 1.2 times wider), > 0.7 for one five times narrower than the posterior
    (checked on the mean over 10 rows; single-row tail fits are noisy, so rows only > 0.6)."""
    x = fa.sample(10, generator=torch.Generator().manual_seed(1))
    pyro.set_rng_seed(0)
    exact = psis_khat(fa, x, num_samples=2000)
    wide = psis_khat(fa, x, guide=scaled_guide(fa, 1.2), num_samples=2000)
    narrow = psis_khat(fa, x, guide=scaled_guide(fa, 0.2), num_samples=2000)
    assert exact.shape == (10,) and (exact < 0.5).all() and (wide < 0.5).all(), (exact, wide)
    assert narrow.mean() > 0.7 and (narrow > 0.6).all(), narrow


def test_kl_to_exact_is_zero_for_the_exact_guide_and_closed_form_otherwise(fa):
    x = fa.sample(5, generator=torch.Generator().manual_seed(2))
    mask = torch.rand(5, 8, generator=torch.Generator().manual_seed(3)) < 0.6
    torch.testing.assert_close(kl_to_exact(fa, x, mask), torch.zeros(5, dtype=F64))
    # scaling the covariance by c^2: KL = K/2 (c^2 - 1 - log c^2)
    c2 = 2.0**2
    expected = torch.full((5,), 2 / 2 * (c2 - 1 - torch.log(torch.tensor(c2)).item()), dtype=F64)
    torch.testing.assert_close(kl_to_exact(fa, x, mask, guide=scaled_guide(fa, 2.0)), expected)
    fca = kl_to_exact(fa, x, mask, guide=complete(fa, x, mask, "fca").z)
    missing = ~mask.all(1)  # FCA is exact for a fully observed row
    assert (fca[missing] > 0).all() and fca[~missing].abs().max() < 1e-10


def test_active_units_match_the_closed_form_for_fa():
    """With the exact guide, Cov_x(E[z | x]) = I - (I + W^T Psi^-1 W)^-1."""
    g = torch.Generator().manual_seed(4)
    W = torch.randn(8, 3, generator=g, dtype=F64)
    W[:, 2] *= 0.02  # a nearly dead factor
    fa = FactorAnalysis(W, torch.zeros(8, dtype=F64), torch.ones(8, dtype=F64))
    x = fa.sample(20000, generator=g)
    result = active_units(fa, x)
    expected = (torch.eye(3, dtype=F64) - torch.linalg.inv(fa.full_precision())).diagonal()
    torch.testing.assert_close(result.activity, expected.detach(), rtol=0.05, atol=1e-3)
    assert result.count == 2 and result.active.tolist() == [True, True, False]


def test_sbc_ranks_are_uniform_for_exact_inference_and_not_for_fca(fa):
    sampler = lambda shape, generator=None: random_mask(shape, 0.5, generator=generator)  # noqa: E731
    exact = sbc(
        fa,
        "exact",
        num_simulations=1000,
        mask_sampler=sampler,
        generator=torch.Generator().manual_seed(5),
    )
    biased = sbc(
        fa,
        "fca",
        num_simulations=1000,
        mask_sampler=sampler,
        generator=torch.Generator().manual_seed(5),
    )
    assert exact.ranks.shape == (1000, 2) and 0 <= exact.ranks.min() <= exact.ranks.max() <= 99
    assert exact.uniform(), exact.pvalues
    assert not biased.uniform() and biased.pvalue < 1e-6, biased.pvalues


def test_evaluate_posteriors_table(fa):
    x_true = fa.sample(30, generator=torch.Generator().manual_seed(6))
    mask = random_mask(x_true.shape, 0.5, generator=torch.Generator().manual_seed(7))
    x = torch.where(mask, x_true, torch.nan)
    table = evaluate_posteriors(
        fa,
        x,
        mask,
        ["exact", "fca", "sca", "importance", "mwg"],
        x_true=x_true,
        options={
            "mwg": {"warmup": 5, "thin": 1, "num_samples": 10, "seed": 0},
            "importance": {"num_proposals": 200, "seed": 0},
        },
        num_khat_samples=200,
    )
    rows = table.rows
    assert list(rows) == ["exact", "fca", "sca", "importance", "mwg"]
    assert rows["exact"]["mse_to_exact"] == 0.0 and rows["exact"]["kl_to_exact"] < 1e-10
    assert rows["fca"]["kl_to_exact"] > 0 and rows["sca"]["kl_to_exact"] > 0
    assert rows["exact"]["mse"] <= rows["fca"]["mse"]
    assert "max_rhat" in rows["mwg"] and "kl_to_exact" not in rows["mwg"]
    assert rows["exact"]["khat"] < 0.5
    text = table.to_markdown()
    assert "| mwg |" in text and "KL(q ‖ exact)" in text
    header, _, first = text.splitlines()[:3]
    assert header.count("|") == first.count("|")  # no stray pipes in the column names


def test_kl_of_a_guide_with_no_closed_form_is_estimated_by_monte_carlo(fa):
    """KL(U(0, 1)^2 || N(m, P^-1)) = -E_U[log N(z; m, P^-1)], in closed form:
    (K log 2 pi - log|P| + tr(P) / 12 + (1/2 - m)^T P (1/2 - m)) / 2."""
    x = fa.sample(4, generator=torch.Generator().manual_seed(2))
    exact = fa.exact_posterior(x)
    P, m = exact.precision_matrix, exact.mean
    d = 0.5 - m
    closed = 0.5 * (
        2 * math.log(2 * math.pi)
        - torch.logdet(P)
        + P.diagonal(dim1=-2, dim2=-1).sum(-1) / 12
        + (d[..., None, :] @ P @ d[..., :, None])[..., 0, 0]
    )
    pyro.set_rng_seed(0)
    uniform = dist.Uniform(torch.zeros(4, 2, dtype=F64), 1.0).to_event(1)
    estimate = kl_to_exact(fa, x, guide=uniform, num_samples=50000)
    torch.testing.assert_close(estimate, closed.detach(), rtol=0.01, atol=0.01)


def test_bad_inputs(fa):
    x = fa.sample(4)
    with pytest.raises(ValueError, match="num_samples"):
        psis_khat(fa, x, num_samples=5)
    with pytest.raises(ValueError, match="divisible"):
        sbc(fa, num_posterior_samples=100)
    with pytest.raises(ValueError, match="exact_posterior"):
        kl_to_exact(torch.nn.Linear(2, 2).double(), x)
    with pytest.raises(ValueError, match="at least 2 rows"):
        active_units(fa, x[:1])
    with pytest.raises(ValueError, match="no site 'w'"):
        active_units(fa, x, site="w")
    assert callable(guide_from(fa.exact_posterior(x)))


def test_poor_diagnostics_are_read_flagged_and_warned(fa):
    import math
    import warnings

    from pgm3d.evaluation.readings import PoorDiagnosticWarning, reading

    assert reading("max_rhat", 1.005)[0] is False and reading("max_rhat", 1.2)[0] is True
    assert "a chain never moved" in reading("max_rhat", math.inf)[1]
    assert reading("khat", -math.inf) == (False, reading("khat", -math.inf)[1])
    assert "exact" in reading("khat", -math.inf)[1]
    assert reading("min_ess", 12.0)[0] is True and reading("min_ess", 400.0)[0] is False
    model = fa
    x_true = fa.sample(20, generator=torch.Generator().manual_seed(6))
    mask = random_mask(x_true.shape, 0.5, generator=torch.Generator().manual_seed(7))
    x = torch.where(mask, x_true, torch.nan)
    result = complete(model, x, mask, "mwg", chains=2, warmup=2, num_samples=8, seed=0)
    with pytest.warns(PoorDiagnosticWarning, match="the chains disagree|too few effective"):
        result.diagnostics()
    with warnings.catch_warnings():
        warnings.simplefilter("error", PoorDiagnosticWarning)
        result.diagnostics(warn=False)
    options = {"mwg": dict(chains=2, warmup=2, num_samples=8)}
    table = evaluate_posteriors(model, x, mask, ["exact", "mwg"], options=options)
    text = table.to_markdown()
    assert "Reading the table:" in text and "⚠ **mwg**" in text
    exact_row = next(line for line in text.splitlines() if line.startswith("| exact |"))
    assert "-inf" in exact_row  # the exact posterior as proposal: every weight equal
