"""Rezende et al.'s volume data sets: the geometry against closed-form volumes, seeding, and
their names in open_data."""

import math

import pytest
import torch
from scipy import ndimage

from pgm3d.data import mnist3d, necker_cubes, open_data, primitives
from pgm3d.data.volumes import PRIMITIVES, _occupancy, _primitive_inside

R = 48


def _volume(kind: str, size: float, aspect: float) -> float:
    """The occupied volume of one primitive at the identity pose, in canvas units."""
    params = {
        "kind": torch.tensor([PRIMITIVES.index(kind)]),
        "size": torch.tensor([size], dtype=torch.float64),
        "aspect": torch.tensor([aspect], dtype=torch.float64),
    }
    eye, zero = torch.eye(3, dtype=torch.float64)[None], torch.zeros(1, 3, dtype=torch.float64)
    grid = _occupancy(_primitive_inside, eye, zero, R, params)
    return float(grid.sum()) * (2 / R) ** 3


@pytest.mark.parametrize("kind", PRIMITIVES)
def test_each_primitive_has_its_closed_form_volume(kind):
    rho, a = 0.8, 0.6
    r, h = rho * math.sin(a), rho * math.cos(a)
    minor = rho * (0.2 + 0.2 * a / (math.pi / 2))
    exact = {
        "sphere": 4 / 3 * math.pi * rho**3,
        "cube": (2 * rho / math.sqrt(3)) ** 3,
        "cylinder": math.pi * r**2 * 2 * h,
        "cone": math.pi * r**2 * 2 * h / 3,
        "torus": 2 * math.pi**2 * (rho - minor) * minor**2,
    }[kind]
    assert _volume(kind, rho, a) == pytest.approx(exact, rel=0.04)


def test_primitives_are_seeded_labelled_and_split():
    a, b = primitives(6, 16, seed=1), primitives(6, 16, seed=1)
    assert torch.equal(a.voxels, b.voxels) and a.voxels.shape == (30, 16, 16, 16)
    assert not torch.equal(a.voxels, primitives(6, 16, seed=2).voxels)
    assert a.class_names == PRIMITIVES and a.labels.bincount().tolist() == [6] * 5
    assert (a.split == "test").sum() == 6 and a.voxels.flatten(1).any(1).all()
    assert primitives(3, 16, classes=("torus",)).class_names == ("torus",)


def test_an_extruded_square_has_the_slab_volume_at_any_turn():
    image = torch.zeros(1, 8, 8, dtype=torch.float64)
    image[0, 2:6, 2:6] = 1.0  # the central half of the image: [-0.35, 0.35]^2 in the canvas
    data = mnist3d(4, R, seed=0, images=image, labels=torch.tensor([3]), depth=0.3)
    volumes = data.voxels.flatten(1).sum(1).double() * (2 / R) ** 3
    torch.testing.assert_close(volumes, torch.full((4,), 0.7**2 * 0.3, dtype=torch.float64),
                               rtol=0.06, atol=0)  # fmt: skip
    assert data.labels.tolist() == [3] * 4


def test_mnist3d_draws_scikit_learns_digits_by_default():
    data = mnist3d(20, 16, seed=0)
    assert data.voxels.shape == (20, 16, 16, 16) and set(data.labels.tolist()) <= set(range(10))
    assert data.voxels.flatten(1).any(1).all()


def test_a_necker_cube_is_one_hollow_wireframe():
    data = necker_cubes(3, 32, seed=0)
    for grid in data.voxels.numpy():
        _, parts = ndimage.label(grid, structure=torch.ones(3, 3, 3).numpy())
        assert parts == 1  # the 12 edges join at the corners
        assert not grid[14:18, 14:18, 14:18].any()  # hollow
        # 12 bars (2a - 2w) long and w = 1.5 voxels thick, 8 corner cubes, a in [0.35, 0.49]:
        # between 0.0075 and 0.0113 of the canvas
        assert 0.006 < grid.mean() < 0.013


@pytest.mark.parametrize("name", ["primitives", "mnist3d", "necker-cube"])
def test_open_data_names_the_volume_sets(name):
    split = open_data(name, n_train=20, n_test=5, resolution=16, seed=0)
    assert split.kind == "voxels" and split.train.resolution == 16
    assert len(split.test) == 5 and len(split.train) == 20


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="classes must be some of"):
        primitives(2, classes=("pyramid",))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        necker_cubes(0)
    with pytest.raises(ValueError, match="images must be \\(M, H, W\\) with one label each"):
        mnist3d(2, images=torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="depth must be in"):
        mnist3d(2, depth=3.0)
