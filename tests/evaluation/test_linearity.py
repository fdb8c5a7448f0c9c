import math

import pytest
import torch

from pgm3d.data import FAMILIES, shapes
from pgm3d.evaluation import family_linearity, linear_fit_residual, pca_residual


def test_pca_residual_matches_the_closed_form_of_a_diagonal_cloud():
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([3.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    x = torch.randn(4000, 4, generator=g, dtype=torch.float64)
    x = (x - x.mean(0)) / x.std(0) * scales  # exact variances 9, 4, 1, 0.25 on the axes
    x = x @ torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))[0]  # rotated
    got = pca_residual(x, [0, 1, 2, 3, 4])
    var = scales**2
    want = torch.tensor([var[k:].sum() / var.sum() for k in range(5)], dtype=torch.float64)
    torch.testing.assert_close(got, want, atol=0.01, rtol=0)
    assert got[-1] == 0


def test_linear_fit_residual_is_zero_on_linear_data_and_the_closed_form_on_a_parabola():
    g = torch.Generator().manual_seed(1)
    t = torch.rand(20000, 2, generator=g, dtype=torch.float64)
    linear = t @ torch.randn(2, 5, generator=g, dtype=torch.float64) + 3.0
    assert linear_fit_residual(linear, t) < 1e-20
    # x = t^2 on U(0, 1): Var = 4/45, the best line leaves 1/180, a fraction of 1/16
    parabola = t[:, :1] ** 2
    assert linear_fit_residual(parabola, t[:, :1]) == pytest.approx(1 / 16, rel=0.03)
    # a circle in its angle: no line explains any of it
    angle = 2 * math.pi * t[:, :1]
    circle = torch.cat([angle.cos(), angle.sin()], -1)
    assert linear_fit_residual(circle, angle) == pytest.approx(1 - 3 / math.pi**2, abs=0.02)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="float rows"):
        pca_residual(torch.zeros(1, 3), 1)
    with pytest.raises(ValueError, match="dims must be >= 0"):
        pca_residual(torch.zeros(4, 3), [-1])
    with pytest.raises(ValueError, match="parameters must be"):
        linear_fit_residual(torch.zeros(4, 3), torch.zeros(5, 2))


def test_the_sampler_keeps_its_draws():
    data = shapes("chairs_nonlinear", 40, seed=0, points_per_part=4, styles=["slatted"])
    varying = int((data.parameters.std(0) > 0).sum())
    assert 0 < varying <= data.parameters.shape[1]
    again = shapes("chairs_nonlinear", 40, seed=0, points_per_part=4, styles=["slatted"])
    assert torch.equal(again.parameters, data.parameters)
    assert data[torch.tensor([3, 1])].parameters.shape == (2, data.parameters.shape[1])
    torch.testing.assert_close(data[torch.tensor([3, 1])].parameters, data.parameters[[3, 1]])


def test_the_nonlinear_families_are_measurably_less_linear_than_the_original_ones():
    """The original procedural families are within 2% of linear in their parameters in every
    style; each nonlinear family has a style more than 20% away and a mean above 5%."""
    far = {}
    for family in FAMILIES.names():
        result = family_linearity(family, 300, points_per_part=4)
        far[family] = [v["nonlinear_residual"] for v in result.values()]
    for family in ("chairs", "airplanes", "tables", "lamps"):
        assert max(far[family]) < 0.02, (family, far[family])
    for family in ("chairs_nonlinear", "airplanes_nonlinear", "bikes"):
        assert max(far[family]) > 0.2 and sum(far[family]) / len(far[family]) > 0.05, far[family]
