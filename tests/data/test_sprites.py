"""Multi-sprite scenes: counts, blending, determinism, ground truth."""

import pytest
import torch

from pgm3d.data import SPRITE_SHAPES, multi_sprites
from pgm3d.data.sprites import BLOCK, render_sprites


@pytest.fixture(scope="module")
def scenes():
    return multi_sprites(300, 3, seed=0)


def test_scenes_have_the_layout_and_ground_truth_of_the_thesis(scenes):
    assert scenes.images.shape == (300, 3, 64, 64) and scenes.rows().shape == (300, 3 * 64 * 64)
    assert scenes.images.min() >= 0 and scenes.images.max() <= 1
    assert scenes.exists.shape == (300, 3) and scenes.positions.shape == (300, 3, 2)
    assert set(scenes.shapes.unique().tolist()) == set(range(len(SPRITE_SHAPES)))
    # the count is Binomial(3, 0.5): every count from 0 to 3 occurs, the mean is near 1.5
    assert torch.equal(scenes.count, scenes.exists.sum(-1))
    assert set(scenes.count.tolist()) == {0, 1, 2, 3}
    assert abs(scenes.count.float().mean() - 1.5) < 0.15
    assert not scenes.images[scenes.count == 0].any()  # empty scenes are black
    assert multi_sprites(40, 8, seed=0).exists.shape == (40, 8)


def test_each_sprite_covers_its_centre_pixel_in_at_least_its_colour(scenes):
    n, s = torch.nonzero(scenes.exists, as_tuple=True)
    ij = (scenes.positions[n, s] * 64).long().clamp(0, 63)
    centre = scenes.images[n, :, ij[:, 1], ij[:, 0]]  # (M, 3), x is the column
    assert (centre >= scenes.colours[n, s].clamp(max=1) - 1e-6).all()


def test_overlapping_colours_add_and_clip_at_one(scenes):
    fields = [scenes.shapes, scenes.positions, scenes.scales, scenes.angles, scenes.colours]
    alone = [render_sprites(scenes.exists & (torch.arange(3) == k), *fields) for k in range(3)]
    torch.testing.assert_close(scenes.images, sum(alone).clamp(max=1))
    overlap = ((torch.stack(alone).amax(2) > 0).sum(0) > 1).sum()
    assert overlap > 0  # the test draws scenes where sprites overlap
    assert (sum(alone) > 1).any()  # and where the sum is clipped


def test_scenes_are_reproducible_from_the_seed_and_prefix_stable(scenes):
    again = multi_sprites(300, 3, seed=0)
    assert torch.equal(again.images, scenes.images) and torch.equal(again.exists, scenes.exists)
    prefix = multi_sprites(BLOCK + 7, 3, seed=0)  # a prefix does not depend on how many
    torch.testing.assert_close(prefix.images, scenes.images[: BLOCK + 7], rtol=0, atol=0)
    assert not torch.equal(multi_sprites(300, 3, seed=1).images, scenes.images)
    assert torch.equal(scenes[5:9].images, scenes.images[5:9]) and len(scenes[5:9]) == 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "n must be a positive int"),
        ({"max_sprites": 0}, "max_sprites"),
        ({"p_exist": 1.5}, "p_exist"),
        ({"scale_range": (0.2, 0.1)}, "scale_range"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        multi_sprites(**{"n": 4, **kwargs})
