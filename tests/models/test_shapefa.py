import itertools
import warnings

import pytest
import torch

from pgm3d import complete
from pgm3d.data import shapes
from pgm3d.models import FactorAnalysis, ShapeFA

F64 = torch.float64


@pytest.fixture(scope="module")
def fitted():
    train = shapes("chairs", 200, seed=0, points_per_part=4, dtype=F64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = ShapeFA.fit_shapes(train, latent_dim=3, part_dim=4, max_iter=200)
    return train, model


def test_composed_loadings_are_the_two_layers(fitted):
    _, m = fitted
    bottom, top = m.layers["bottom"], m.layers["top"]
    B = torch.block_diag(*[fa.W for fa in bottom])
    torch.testing.assert_close(m.W[:, :3], B @ top.W)
    torch.testing.assert_close(m.W[:, 3:], B * top.psi.sqrt())
    torch.testing.assert_close(m.mu, B @ top.mu + torch.cat([fa.mu for fa in bottom]))
    assert m.latent_dim == 3 + 9 * 4 and m.data_dim == 9 * 4 * 6


def test_log_likelihood_integrates_u_exactly_over_present_parts(fitted):
    """Against the marginal of the visible parts built directly from the layers:
    N(B_v c_v + mu_v, B_v (A_v A_v^T + Phi_v) B_v^T + Psi_v) (thesis eq. 3.9)."""
    _, m = fitted
    test = shapes("chairs", 6, seed=5, points_per_part=4, dtype=F64)
    x, mask = m.data(test)
    got = m.log_likelihood(x, mask)
    bottom, top = m.layers["bottom"], m.layers["top"]
    B = torch.block_diag(*[fa.W for fa in bottom])
    mu_b = torch.cat([fa.mu for fa in bottom])
    cov_u = top.W @ top.W.T + torch.diag(top.psi)
    for i in range(6):
        v = mask[i]
        mean = (B @ top.mu + mu_b)[v]
        cov = (B @ cov_u @ B.T + torch.diag(torch.cat([fa.psi for fa in bottom])))[v][:, v]
        ref = torch.distributions.MultivariateNormal(mean, cov).log_prob(x[i, v])
        assert got[i].item() == pytest.approx(ref.item(), rel=1e-9)
    log_pe = m.existence_distribution().log_prob(test.existence.double())
    torch.testing.assert_close(m.log_joint(x, mask, test.existence), got + log_pe)


def test_exact_completion_of_dropped_parts_beats_the_mean(fitted):
    _, m = fitted
    test = shapes("chairs", 40, seed=6, points_per_part=4, dtype=F64)
    x, mask = m.data(test)
    dropped = mask.clone()
    back = test.part_slice("back")
    dropped[:, back.start * 6 : back.stop * 6] = False
    target = mask & ~dropped
    err = {
        k: ((complete(m, x, dropped, k).x - x) ** 2)[target].mean().item()
        for k in ("exact", "sca", "fca", "mean")
    }
    assert err["exact"] < err["mean"] and err["exact"] < err["sca"], err


def test_fit_missing_matches_fit_on_complete_data_and_never_decreases():
    g = torch.Generator().manual_seed(0)
    truth = FactorAnalysis.random(10, 2, generator=g, dtype=F64)
    X = truth.sample(1500, generator=g)
    full = FactorAnalysis.fit(X, 2)
    missing = FactorAnalysis.fit_missing(X, torch.ones_like(X, dtype=torch.bool), 2)
    assert missing.log_likelihood(X).mean().item() == pytest.approx(
        full.log_likelihood(X).mean().item(), abs=1e-4
    )
    mask = torch.rand(X.shape, generator=g) < 0.6
    partial = FactorAnalysis.fit_missing(torch.where(mask, X, torch.nan), mask, 2)
    history = partial.fit_info.log_likelihood
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(history))
    # the incomplete-data fit is close to the truth on complete data
    assert partial.log_likelihood(X).mean() > truth.log_likelihood(X).mean() - 0.05
    with pytest.raises(ValueError, match="never observed"):
        FactorAnalysis.fit_missing(X, mask & (torch.arange(10) != 3), 2)


def test_bad_inputs(fitted):
    train, m = fitted
    with pytest.raises(ValueError, match="needs more"):
        ShapeFA.fit_shapes(train[:10], latent_dim=2, part_dim=8)
    with pytest.raises(ValueError, match="point entries"):
        m.data(shapes("chairs", 2, points_per_part=5, dtype=F64))
