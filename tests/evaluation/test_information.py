"""Mutual-information estimates of thesis ch. 6 against exact values."""

import itertools
import math

import pytest
import torch

from pgm3d.evaluation import (
    discrete_entropy,
    kde_mutual_information,
    kraskov_entropy,
    kraskov_mutual_information,
    negative_cross_entropy,
)
from pgm3d.inference import fit
from pgm3d.models import PixelCNN

F64 = torch.float64


def test_kraskov_entropy_of_a_gaussian():
    g = torch.Generator().manual_seed(0)
    cov = torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=F64)
    x = torch.randn(4000, 2, generator=g, dtype=F64) @ torch.linalg.cholesky(cov).T
    exact = 0.5 * math.log((2 * math.pi * math.e) ** 2 * float(torch.linalg.det(cov)))
    for k in (1, 3):
        assert kraskov_entropy(x, k) == pytest.approx(exact, abs=0.05)
    with pytest.raises(ValueError, match="k must be"):
        kraskov_entropy(x[:3], 3)


def test_kde_and_kraskov_estimates_at_their_limits():
    """Well-separated activations carry log N nats about N equally likely inputs; identical
    ones carry none."""
    n = 64
    apart = torch.eye(n, dtype=F64) * 100.0
    same = torch.ones(n, 5, dtype=F64)
    assert kde_mutual_information(apart, 0.1) == pytest.approx(math.log(n), abs=1e-9)
    assert kde_mutual_information(same, 0.1) == pytest.approx(0.0, abs=1e-12)
    g = torch.Generator().manual_seed(1)
    # noise alone: the noisy activations are a Gaussian whose entropy the noise's cancels
    assert kraskov_mutual_information(same[:, :2].repeat(40, 1), 1.0, generator=g) == (
        pytest.approx(0.0, abs=0.1)
    )
    with pytest.raises(ValueError, match="noise"):
        kde_mutual_information(apart, 0.0)


def test_discrete_entropy_counts_equal_rows_as_one_value():
    values = torch.tensor([[0, 1], [0, 1], [1, 1], [2, 0]])
    assert discrete_entropy(values) == pytest.approx(-(0.5 * math.log(0.5) + 0.5 * math.log(0.25)))
    assert discrete_entropy(values, weights=[0.25, 0.25, 0.5, 0.0]) == pytest.approx(math.log(2))


def test_the_inversion_bound_lies_below_the_exact_information_on_all_3x3_binary_images():
    """x uniform over the 512 binary 3x3 images, h = sign of four fixed projections (at most
    16 values): I(x; h) = H(h) exactly. A PixelCNN p(x | h) trained on the whole population and
    scored on it gives H(x) - CE <= I(x; h) (Gibbs' inequality, no sampling error), and after
    training it is within a stated margin; KDE and Kraskov estimates on noisy h beside it."""
    x = torch.tensor(list(itertools.product([0, 1], repeat=9)), dtype=F64)
    g = torch.Generator().manual_seed(0)
    proj = torch.randn(9, 4, generator=g, dtype=F64)
    h = (((2 * x - 1) @ proj) > 0).to(F64)
    exact = discrete_entropy(h)
    h_x = 9 * math.log(2)
    torch.manual_seed(0)
    m = PixelCNN((3, 3), levels=2, cond_shape=(4,), channels=16, layers=3).double()
    fit(m, x, "elbo", context={"h": h}, epochs=150, batch_size=128, lr=1e-2, progress=False)
    m.eval()
    bound = h_x + negative_cross_entropy(m, x, h)
    assert bound <= exact + 1e-9
    assert bound > exact - 0.25, (bound, exact)
    kde = kde_mutual_information(h, 0.1)
    assert kde == pytest.approx(exact, abs=1e-6)  # distinct codes are far apart at sigma 0.1
    assert kraskov_mutual_information(h, 0.1, generator=g) > 0
