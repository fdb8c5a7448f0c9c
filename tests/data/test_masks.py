import pytest
import torch

from pgm3d.data import half_volume_mask, quarter_mask, random_mask


def test_random_mask_rate_and_determinism():
    m1 = random_mask((400, 50), 0.3, generator=torch.Generator().manual_seed(0))
    m2 = random_mask((400, 50), 0.3, generator=torch.Generator().manual_seed(0))
    assert m1.dtype == torch.bool and m1.shape == (400, 50)
    assert torch.equal(m1, m2)
    assert abs((~m1).float().mean().item() - 0.3) < 0.01


def test_quarter_mask_hides_exactly_one_quarter():
    H, W = 7, 6  # odd height: split at row 3
    m = quarter_mask((4, H * W), (H, W), quarter=torch.arange(4)).view(4, H, W)
    expected = [
        (slice(0, 3), slice(0, 3)),
        (slice(0, 3), slice(3, 6)),
        (slice(3, 7), slice(0, 3)),
        (slice(3, 7), slice(3, 6)),
    ]
    for q, (rs, cs) in enumerate(expected):
        hidden = torch.zeros(H, W, dtype=torch.bool)
        hidden[rs, cs] = True
        assert torch.equal(m[q], ~hidden)
    drawn = quarter_mask((1000, 42), (7, 6), generator=torch.Generator().manual_seed(1))
    assert len(torch.unique(drawn, dim=0)) == 4


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_half_volume_mask_hides_the_front_half_along_an_axis(axis):
    R = 5
    m = half_volume_mask((2, R**3), R, axis=axis)
    grid = m.view(2, R, R, R).movedim(axis + 1, 1)  # the cut axis first
    assert not grid[:, : R // 2].any() and grid[:, R // 2 :].all()
    assert m.shape == (2, R**3) and m.dtype == torch.bool


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: random_mask((3,), 0.5), "shape"),
        (lambda: random_mask((3, 4), 1.5), "p_missing"),
        (lambda: quarter_mask((3, 10), (3, 4)), "image_shape"),
        (lambda: quarter_mask((3, 12), (3, 4), quarter=4), "quarter"),
        (lambda: half_volume_mask((3, 26), 3), "R³ = D = 26"),
        (lambda: half_volume_mask((3, 27), 3, axis=3), "axis must be 0, 1 or 2"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
