import math

import numpy as np
import pytest
import torch

from pgm3d.data import Mesh, shapes, voxel_classes, voxelize
from pgm3d.data.parts import Box, Ellipsoid
from pgm3d.data.voxels import grid_centers, voxelize_parts


def _mesh(part, i=0):
    v, f = part.mesh()
    return Mesh(v[i], f)


def _sphere(radius=0.8, rings=48, segments=96):
    part = Ellipsoid(
        torch.zeros(1, 3, dtype=torch.float64), torch.full((1, 3), radius, dtype=torch.float64)
    )
    part.rings, part.segments = rings, segments
    return _mesh(part)


@pytest.mark.parametrize("resolution", [32, 64])
def test_sphere_volume_matches_the_analytic_volume(resolution):
    """Tolerance: 1.5% at 32^3 and 0.5% at 64^3 of (4/3) pi r^3 (the voxel count's error is
    about the surface area times a voxel's volume fraction of it; the mesh is inscribed)."""
    mesh = _sphere()
    grid = voxelize(mesh, resolution, bounds=(-1, 1))
    volume = grid.sum().item() * (2 / resolution) ** 3
    exact = 4 / 3 * math.pi * 0.8**3
    tol = 0.015 if resolution == 32 else 0.005
    assert abs(volume / exact - 1) < tol, volume / exact
    # the two fill rules agree on a single closed oriented surface
    assert torch.equal(grid, voxelize(mesh, resolution, bounds=(-1, 1), rule="parity"))


def test_axis_aligned_box_is_exact_despite_rays_on_its_edges():
    box = Box.cuboid(torch.zeros(1, 3, dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64))
    mesh = _mesh(box)
    assert voxelize(mesh, 8, bounds=(-1, 1)).all()
    grid = voxelize(mesh, 8, bounds=(-1.5, 1.5))
    assert grid.sum() == 6**3 and grid[1:7, 1:7, 1:7].all()


def test_overlapping_parts_union_with_nonzero_rule_and_xor_with_parity():
    a = Box.cuboid(
        torch.tensor([[-0.25, 0, 0]], dtype=torch.float64),
        torch.full((1, 3), 0.5, dtype=torch.float64),
    )
    b = Box.cuboid(
        torch.tensor([[0.25, 0, 0]], dtype=torch.float64),
        torch.full((1, 3), 0.5, dtype=torch.float64),
    )
    va, fa = a.mesh()
    vb, fb = b.mesh()
    union = Mesh(torch.cat([va[0], vb[0]]), torch.cat([fa, fb + 8]))
    grid = voxelize(union, 16, bounds=(-1, 1))
    centres = grid_centers(16)
    inside = (centres[..., 0].abs() < 0.75) & (centres[..., 1:].abs() < 0.5).all(-1)
    assert torch.equal(grid, inside)
    xor = voxelize(union, 16, bounds=(-1, 1), rule="parity")
    assert torch.equal(xor, inside & ~(centres[..., 0].abs() < 0.25))


def test_default_bounds_fit_the_shape_with_padding():
    grid = voxelize(_sphere(), 20, padding=2)
    occupied = grid.nonzero()
    assert occupied.min() == 2 and occupied.max() == 17


def test_surface_voxels_and_point_occupancy():
    mesh = _sphere()
    solid = voxelize(mesh, 24, bounds=(-1, 1))
    shell = voxelize(mesh, 24, bounds=(-1, 1), solid=False)
    assert shell.sum() < solid.sum() and not shell[12, 12, 12]
    pts = torch.tensor([[0.0, 0, 0], [0.9, 0.9, 0.9], [5.0, 0, 0]])
    grid = voxelize(pts, 4, bounds=(-1, 1))
    assert grid.sum() == 2 and grid[2, 2, 2] and grid[3, 3, 3]


def test_analytic_part_voxels_agree_with_mesh_voxelisation():
    data = shapes("chairs", 6, seed=2, points_per_part=8)
    grids = voxelize_parts(data.parts, data.existence, 32, padding=2, shell=0.0)
    for i in range(6):
        mesh_grid = voxelize(data.mesh(i), 32, padding=2)
        # the meshes are inscribed polygons of the round parts, so a few boundary voxels differ
        assert (mesh_grid == grids[i]).float().mean() > 0.998


def test_bad_voxelize_inputs():
    open_mesh = Mesh(torch.eye(3, dtype=torch.float64), torch.tensor([[0, 1, 2]]), source="lid.off")
    with pytest.raises(ValueError, match="'lid.off' is not watertight.*solid=False"):
        voxelize(open_mesh, 8)
    with pytest.raises(ValueError, match="empty mesh"):
        voxelize(
            Mesh(torch.zeros(0, 3, dtype=torch.float64), torch.zeros(0, 3, dtype=torch.long)), 8
        )
    with pytest.raises(ValueError, match="resolution"):
        voxelize(_sphere(), 0)
    with pytest.raises(ValueError, match="rule"):
        voxelize(_sphere(), 8, rule="odd")
    with pytest.raises(ValueError, match=r"\(P, 3\)"):
        voxelize(torch.zeros(4, 2), 8)
    with pytest.raises(TypeError, match="voxelize takes"):
        voxelize("sphere", 8)


@pytest.fixture(scope="module")
def classes():
    return voxel_classes(5, resolution=30, seed=1, progress=False)


def test_voxel_classes_have_labels_split_and_rotations(classes):
    assert classes.voxels.shape == (50, 30, 30, 30) and classes.voxels.dtype == torch.bool
    assert len(classes.class_names) == 10 and {"chair", "airplane", "table"} <= set(
        classes.class_names
    )
    assert torch.equal(torch.bincount(classes.labels), torch.full((10,), 5))
    assert (classes.split == "test").sum() == 10 and len(classes.subset("train")) == 40
    assert classes.angles.std() > 0.5
    occupied = classes.voxels.flatten(1).any(-1)
    assert occupied.all()
    # every shape fills its grid less the default 3-voxel padding along its largest side (the
    # half-voxel shell may add one voxel on each side)
    for g in classes.voxels:
        idx = g.nonzero()
        assert idx.min() >= 2 and idx.max() <= 27
        assert (idx.amax(0) - idx.amin(0)).max() >= 23


def test_voxel_classes_are_deterministic_and_rotations_change_grids(classes):
    again = voxel_classes(5, resolution=30, seed=1, progress=False)
    assert torch.equal(again.voxels, classes.voxels)
    upright = voxel_classes(
        5, resolution=30, seed=1, rotate=False, classes=["chair"], progress=False
    )
    assert (upright.angles == 0).all()
    with pytest.raises(ValueError, match="unknown voxel class 'boat'"):
        voxel_classes(2, classes=["boat"])
    with pytest.raises(ValueError, match="n_per_class"):
        voxel_classes(0)


def test_voxel_set_indexing(classes):
    sub = classes[torch.tensor([0, 7])]
    assert sub.voxels.shape[0] == 2 and list(sub.split) == [classes.split[0], classes.split[7]]
    assert isinstance(sub.split, np.ndarray)


def test_the_40_class_set_has_every_style_and_primitive_as_a_class():
    from pgm3d.data.voxels import VOXEL_CLASSES_40

    data = voxel_classes(2, resolution=16, seed=0, classes="40", progress=False)
    assert len(data.class_names) == 40 == len(VOXEL_CLASSES_40)
    assert torch.equal(torch.bincount(data.labels), torch.full((40,), 2))
    assert data.voxels.flatten(1).any(-1).all()
    # a class of one style holds only that style: office chairs have a column, no legs
    office = voxel_classes(3, resolution=16, classes=["chairs.office"], rotate=False)
    bench = voxel_classes(3, resolution=16, classes=["chairs.bench"], rotate=False)
    assert not torch.equal(office.voxels, bench.voxels)
    with pytest.raises(ValueError, match="unknown voxel set '20'"):
        voxel_classes(2, classes="20")


def test_the_40_class_set_opens_by_name():
    from pgm3d.data.datasets import open_voxels

    split = open_voxels("voxel-classes-40", resolution=12, n_per_class=2, seed=0)
    assert len(split.train.class_names) == 40 and len(split.train) + len(split.test) == 80
