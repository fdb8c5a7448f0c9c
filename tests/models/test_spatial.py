"""Spatial transformers (§A.3 of Rezende et al. 2016): identities, known moves of an impulse,
the separable form against the grid form, gradients."""

import pytest
import torch

from pgm3d.models.spatial import (
    AffineHead,
    axis_aligned_theta,
    invert_theta,
    read,
    separable_transform,
    spatial_transform,
    write,
)

F64 = torch.float64


def _identity(B, n):
    return axis_aligned_theta(torch.ones(B, n, dtype=F64), torch.zeros(B, n, dtype=F64))


@pytest.mark.parametrize("n", [2, 3])
def test_identity_parameters_return_the_input(n):
    x = torch.rand(2, 3, *(5,) * n, dtype=F64)
    theta = _identity(2, n)
    torch.testing.assert_close(spatial_transform(x, theta, 5), x, rtol=0, atol=1e-12)
    ones, zeros = torch.ones(2, n, dtype=F64), torch.zeros(2, n, dtype=F64)
    torch.testing.assert_close(separable_transform(x, ones, zeros, 5), x, rtol=0, atol=1e-12)


def test_a_translation_moves_a_one_voxel_impulse_by_whole_voxels():
    R = 8
    x = torch.zeros(1, 1, R, R, R, dtype=F64)
    x[0, 0, 4, 3, 2] = 1.0  # (d, h, w)
    # output u reads input u + t: a shift of +2 voxels along w moves the impulse to w = 0,
    # of -1 voxel along d moves it to d = 5
    shift = torch.tensor([[2 * 2 / R, 0.0, -1 * 2 / R]], dtype=F64)
    theta = axis_aligned_theta(torch.ones(1, 3, dtype=F64), shift)
    for out in (
        spatial_transform(x, theta, R),
        separable_transform(x, theta[:, :, :3].diagonal(dim1=1, dim2=2), shift, R),
    ):
        assert out[0, 0, 5, 3, 0] == pytest.approx(1.0, abs=1e-12)
        assert out.sum() == pytest.approx(1.0, abs=1e-12)


def test_a_quarter_turn_maps_voxel_centres_onto_voxel_centres():
    R = 6
    x = torch.zeros(1, 1, R, R, R, dtype=F64)
    x[0, 0, 1, 2, 4] = 1.0  # (d, h, w) = z, y, x
    # output (x, y) reads input (-y, x): a quarter turn about the depth axis
    theta = torch.tensor([[[0.0, -1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]],
                         dtype=F64)  # fmt: skip
    out = spatial_transform(x, theta, R)
    # input w = 4 (x = 0.5), h = 2 (y = -1/6); output (x', y') with -y' = 0.5, x' = -1/6
    # gives w' = 2, h' = 1
    assert out[0, 0, 1, 1, 2] == pytest.approx(1.0, abs=1e-12)
    assert out.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n", [2, 3])
def test_the_separable_kernels_equal_the_grid_form_for_axis_aligned_maps(n):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, *(7,) * n, dtype=F64, generator=g)
    scale = 0.3 + 1.2 * torch.rand(3, n, dtype=F64, generator=g)
    shift = 1.6 * torch.rand(3, n, dtype=F64, generator=g) - 0.8
    size = (4, 5, 6)[-n:]
    grid = spatial_transform(x, axis_aligned_theta(scale, shift), size)
    sep = separable_transform(x, scale, shift, size)
    assert sep.shape == (3, 2, *size)
    torch.testing.assert_close(sep, grid, rtol=0, atol=1e-12)


def test_gradients_flow_to_the_parameters_and_the_input():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, 4, 4, 4, dtype=F64, generator=g, requires_grad=True)
    scale = (0.6 + 0.3 * torch.rand(1, 3, dtype=F64, generator=g)).requires_grad_()
    shift = (0.2 * torch.rand(1, 3, dtype=F64, generator=g) - 0.1).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, s, t: separable_transform(x, s, t, 3), (x, scale, shift)
    )
    assert torch.autograd.gradcheck(
        lambda x, s, t: spatial_transform(x, axis_aligned_theta(s, t), 3), (x, scale, shift)
    )


def test_writing_puts_a_patch_back_where_reading_found_it():
    g = torch.Generator().manual_seed(2)
    canvas = torch.zeros(2, 1, 8, 8, 8, dtype=F64)
    canvas[:, :, 2:6, 2:6, 2:6] = torch.rand(2, 1, 4, 4, 4, dtype=F64, generator=g)
    # the central half of the canvas, read at 4^3: exact voxel-to-voxel
    theta = axis_aligned_theta(torch.full((2, 3), 0.5, dtype=F64), torch.zeros(2, 3, dtype=F64))
    patch = read(canvas, theta, 4)
    torch.testing.assert_close(patch, canvas[:, :, 2:6, 2:6, 2:6], rtol=0, atol=1e-12)
    torch.testing.assert_close(write(patch, theta, 8), canvas, rtol=0, atol=1e-12)
    torch.testing.assert_close(invert_theta(invert_theta(theta)), theta)


def test_the_affine_head_starts_at_its_initial_scale_and_the_identity():
    head = AffineHead(5, 3, init_scale=0.5).double()
    theta = head(torch.randn(4, 5, dtype=F64))
    expected = axis_aligned_theta(torch.full((4, 3), 0.5, dtype=F64), torch.zeros(4, 3, dtype=F64))
    torch.testing.assert_close(theta, expected)
    full = AffineHead(5, 2, full=True).double()(torch.randn(4, 5, dtype=F64))
    torch.testing.assert_close(full, _identity(4, 2))


def test_bad_shapes_are_refused_with_a_message():
    with pytest.raises(ValueError, match="x must be \\(B, C, H, W\\) or \\(B, C, D, H, W\\)"):
        spatial_transform(torch.zeros(2, 4), torch.zeros(2, 2, 3), 3)
    with pytest.raises(ValueError, match="theta must be \\(2, 3, 4\\)"):
        spatial_transform(torch.zeros(2, 1, 4, 4, 4), torch.zeros(2, 2, 3), 3)
    with pytest.raises(ValueError, match="size must be"):
        spatial_transform(torch.zeros(2, 1, 4, 4), _identity(2, 2).float(), (3, 0))
    with pytest.raises(ValueError, match="dims must be 2 or 3"):
        AffineHead(4, 4)


def test_silhouettes_see_a_bar_from_the_front_and_end_on_after_a_quarter_turn():
    from pgm3d.models.spatial import orthographic_silhouette

    R = 8
    bar = torch.zeros(1, R, R, R, dtype=F64)
    bar[0, :, 3, 4] = 1.0  # along x, at y index 3, z index 4
    front = orthographic_silhouette(bar, torch.zeros(1, dtype=F64))[0]
    # seen along z: a horizontal line across the image at y index 3 (image row R - 1 - 3)
    assert front[R - 1 - 3].min() == 1.0 and front.sum() == R
    turned = orthographic_silhouette(bar, torch.full((1,), torch.pi / 2, dtype=F64))[0]
    # a quarter turn about y points the bar along the view: one spot in the image
    assert (turned > 0.5).sum() == 1 and turned[R - 1 - 3].max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="volumes must be \\(N, R, R, R\\)"):
        orthographic_silhouette(bar[0], torch.zeros(1))
