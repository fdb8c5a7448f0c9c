"""The vectorised R-hat and ESS agree with ArviZ's, variable by variable."""

import numpy as np
import pytest

from pgm3d.evaluation.arviz import rhat_ess as arviz_rhat_ess
from pgm3d.evaluation.convergence import rhat_ess


def _ar1(rng, chains, draws, shape, phi):
    """AR(1) chains (autocorrelation ``phi``), some with shifted means."""
    x = np.zeros((chains, draws, *shape))
    x[:, 0] = rng.normal(size=(chains, *shape))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + rng.normal(size=(chains, *shape))
    return x


@pytest.mark.parametrize(
    "chains, draws, phi", [(4, 100, 0.0), (4, 101, 0.9), (2, 10, 0.5), (3, 400, 0.99), (1, 50, 0.3)]
)
def test_matches_arviz(chains, draws, phi):
    rng = np.random.default_rng(chains * draws)
    x = _ar1(rng, chains, draws, (3, 5), phi)
    x[0, :, 0, 0] += 3.0  # one chain stuck elsewhere: a large R-hat
    x[:, :, 1, 1] = 2.5  # a constant variable: ESS = all draws, R-hat NaN
    x[:, :, 2, 2] = np.round(x[:, :, 2, 2])  # ties in the ranks
    rhat, ess = rhat_ess(x)
    ref_rhat, ref_ess = arviz_rhat_ess(x)
    assert rhat.shape == ess.shape == (3, 5)
    np.testing.assert_allclose(rhat, ref_rhat, rtol=1e-8, equal_nan=True)
    np.testing.assert_allclose(ess, ref_ess, rtol=1e-8, equal_nan=True)
    if chains > 1:
        assert rhat[0, 0] > 1.1


def test_nan_samples_and_too_few_draws():
    x = np.random.default_rng(0).normal(size=(2, 8, 2))
    x[1, 3, 0] = np.nan
    rhat, ess = rhat_ess(x)
    assert np.isnan(rhat[0]) and np.isnan(ess[0]) and np.isfinite(rhat[1])
    with pytest.raises(ValueError, match="at least 4 draws"):
        rhat_ess(x[:, :3])
