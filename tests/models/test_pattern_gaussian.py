import math

import pytest
import torch

from pgm3d.data import shapes
from pgm3d.models import PatternGaussian

F64 = torch.float64


@pytest.fixture(scope="module")
def fitted():
    data = shapes("airplanes", 80, seed=0, points_per_part=6, dtype=F64)
    model = PatternGaussian.fit_shapes(data).double()
    return data, model


def test_fit_is_the_per_pattern_maximum_likelihood_estimate(fitted):
    data, model = fitted
    x, _ = model.data(data)
    for k, pattern in enumerate(model.patterns):
        rows = (data.existence == pattern).all(-1)
        present = model.entry_mask(pattern)
        pts = x[rows, : model.point_dim][:, present]
        torch.testing.assert_close(model.loc[k, present], pts.mean(0))
        torch.testing.assert_close(model.variance[k, present], pts.var(0, unbiased=False) + 1e-3)


def test_log_likelihood_matches_the_closed_form_and_marginalises_missing_entries(fitted):
    data, model = fitted
    x, mask = model.data(data[:10])
    mask[:, ::7] = False  # hide some entries (existence columns stay observed)
    mask[:, model.point_dim :] = True
    got = model.log_likelihood(x, mask)
    for i in range(10):
        k = int((model.patterns == data.existence[i]).all(-1).nonzero())
        keep = mask[i, : model.point_dim] & model.entry_mask(model.patterns[k])
        normal = torch.distributions.Normal(model.loc[k], model.variance[k].sqrt())
        ref = normal.log_prob(x[i, : model.point_dim])[keep].sum()
        ref += math.log(int(model.pattern_counts[k]) / 80)
        assert got[i].item() == pytest.approx(ref.item(), rel=1e-12)


def test_samples_follow_the_fitted_patterns(fitted):
    _, model = fitted
    s = model.sample(3000, generator=torch.Generator().manual_seed(0))
    e = s[:, model.point_dim :].bool()
    k = (e[:, None] == model.patterns[None]).all(-1).float().argmax(-1)
    freq = torch.bincount(k, minlength=len(model.patterns)).double() / 3000
    torch.testing.assert_close(freq, model.pattern_counts.double() / 80, atol=0.03, rtol=0)
    first = k == 0
    present = model.entry_mask(model.patterns[0])
    torch.testing.assert_close(
        s[first, : model.point_dim][:, present].mean(0), model.loc[0, present], atol=0.08, rtol=0
    )
    assert (s[:, : model.point_dim][~model.entry_mask(e)] == 0).all()


def test_bad_inputs(fitted):
    data, model = fitted
    x, mask = model.data(data[:2])
    unfitted = PatternGaussian.from_shapes(data).double()
    with pytest.raises(RuntimeError, match="fit the model first"):
        unfitted.log_likelihood(x, mask)
    unseen = x.clone()
    unseen[0, model.point_dim :] = torch.tensor([1.0, 0, 1, 0, 1, 0], dtype=F64)
    with pytest.raises(ValueError, match="never occurs"):
        model.log_likelihood(unseen, mask)
    smooth = PatternGaussian.fit_shapes(data, existence_smoothing=1.0).double()
    with pytest.raises(ValueError, match="no fitted Gaussian"):
        smooth.log_likelihood(unseen, mask)
    with pytest.raises(ValueError, match="min_variance"):
        PatternGaussian.from_shapes(data, min_variance=0.0)
