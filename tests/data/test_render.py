"""Renderers of voxel grids and meshes: analytic silhouettes and depths, trimesh's ray casting,
the two camera models' far limit."""

import math

import numpy as np
import pytest
import torch
import trimesh

from pgm3d.data.mesh import Mesh
from pgm3d.data.render import Camera, camera_rays, render_meshes, render_voxels, sample_rays

F64 = torch.float64


def _cube(R=32, half=0.5):
    """A solid cube [-half, half]^3 as an R^3 grid (exact on voxel boundaries)."""
    c = (2 * torch.arange(R, dtype=F64) + 1) / R - 1
    inside = c.abs() < half
    return (inside[:, None, None] & inside[None, :, None] & inside[None, None, :])[None]


def _iou(a, b):
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum()) / float((a | b).sum())


@pytest.mark.parametrize("degrees", [0, 30, 45, 70])
def test_a_voxel_cube_projects_to_its_analytic_silhouette(degrees):
    """Seen from the side at azimuth a, the cube [-1/2, 1/2]^3 is the rectangle
    |x| <= (|cos a| + |sin a|) / 2, |y| <= 1/2 of the image plane: every pixel agrees but those
    whose centre lies within a ray step of the outline (where the ray grazes a thin sliver of
    the cube between two samples)."""
    size, a = 64, math.radians(degrees)
    image = render_voxels(_cube(), Camera(azimuth=a), size)[0] > 0.5
    c = (2 * torch.arange(size, dtype=F64) + 1) / size - 1
    half_width = (abs(math.cos(a)) + abs(math.sin(a))) / 2
    truth = (c.abs()[None, :] <= half_width) & (c.abs()[:, None] <= 0.5)
    to_outline = torch.minimum((c.abs()[None, :] - half_width).abs().expand(size, size),
                               (c.abs()[:, None] - 0.5).abs().expand(size, size))  # fmt: skip
    wrong = image ^ truth
    assert (to_outline[wrong] < 2 * math.sqrt(3) / (4 * 32)).all()
    assert wrong.sum() <= 2 * size


def _trimesh_silhouette(mesh: trimesh.Trimesh, camera: Camera, size: int) -> np.ndarray:
    pytest.importorskip("rtree", reason="trimesh's ray casting needs rtree (the dev extra)")
    origins, dirs = camera_rays(camera, size)
    hits = trimesh.ray.ray_triangle.RayMeshIntersector(mesh).intersects_any(
        origins.reshape(-1, 3).numpy(), dirs.reshape(-1, 3).numpy()
    )
    return hits.reshape(size, size)


@pytest.mark.parametrize("projection", ["orthographic", "perspective"])
def test_mesh_silhouettes_agree_with_trimesh_ray_casting(projection):
    shapes = [
        trimesh.creation.icosphere(subdivisions=2, radius=0.7),
        trimesh.creation.box(extents=(1.2, 0.5, 0.8)),
        trimesh.creation.cylinder(radius=0.4, height=1.2, sections=24),
        trimesh.creation.annulus(r_min=0.3, r_max=0.7, height=0.3),
    ]
    for k, shape in enumerate(shapes):
        camera = Camera(azimuth=0.4 + k, elevation=0.3, projection=projection)
        ours = render_meshes(Mesh(torch.as_tensor(shape.vertices), torch.as_tensor(shape.faces)),
                             camera, 48)[0]  # fmt: skip
        theirs = torch.as_tensor(_trimesh_silhouette(shape, camera, 48)).double()
        assert _iou(ours, theirs) > 0.98


def test_depth_and_shading_of_a_sphere():
    shape = trimesh.creation.icosphere(subdivisions=4, radius=0.8)
    mesh = Mesh(torch.as_tensor(shape.vertices), torch.as_tensor(shape.faces))
    camera = Camera(distance=3.0)
    depth = render_meshes(mesh, camera, 33, "depth")[0]
    assert depth[16, 16] == pytest.approx(3.0 - 0.8, abs=2e-3)  # the ray through the centre
    shaded = render_meshes(mesh, camera, 33, "shaded")[0]
    assert shaded[16, 16] == pytest.approx(1.0, abs=1e-3)  # facing the light
    assert shaded[16, 16] > shaded[16, 3] > 0  # darker towards the rim, lit inside it
    assert shaded[0, 0] == 0 and depth[0, 0] == 0  # background


def test_voxels_and_their_mesh_render_alike():
    from pgm3d.data import voxelize

    shape = trimesh.creation.box(extents=(1.2, 0.6, 0.9))
    mesh = Mesh(torch.as_tensor(shape.vertices), torch.as_tensor(shape.faces))
    grid = voxelize(mesh, 32, bounds=(-1.0, 1.0))[None]
    camera = Camera(azimuth=0.6, elevation=0.4)
    for kind in ("silhouette", "depth"):
        a, b = render_voxels(grid, camera, 48, kind)[0], render_meshes(mesh, camera, 48, kind)[0]
        if kind == "silhouette":
            assert _iou(a, b) > 0.9
        else:
            both = (a > 0) & (b > 0)
            assert (a[both] - b[both]).abs().median() < 2 / 32  # within a voxel or so
    shaded = render_voxels(grid, camera, 48, "shaded")[0]
    assert (shaded[shaded > 0] >= 0.2).all() and shaded.max() <= 1


def test_far_perspective_cameras_see_what_orthographic_ones_see():
    grid = _cube(half=0.6).double()
    d = 500.0
    far = Camera(azimuth=0.5, distance=d, projection="perspective", fov=2 * math.atan(1.0 / d))
    near = Camera(azimuth=0.5, distance=d)
    a, b = render_voxels(grid, far, 48)[0], render_voxels(grid, near, 48)[0]
    assert _iou(a, b) > 0.99


def test_ray_samples_are_differentiable_in_the_voxels():
    grid = (_cube().double() * 0.9).requires_grad_()
    occ, _ = sample_rays(grid, Camera(azimuth=0.3), 16, 32)
    (1 - (1 - occ).prod(1)).sum().backward()
    assert grid.grad.abs().sum() > 0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="projection must be"):
        Camera(projection="fisheye")
    with pytest.raises(ValueError, match="kind must be one of"):
        render_voxels(_cube(), Camera(), 8, "normals")
    with pytest.raises(ValueError, match="volumes must be \\(N, R, R, R\\)"):
        sample_rays(torch.zeros(4, 4, 4), Camera(), 8, 8)
    with pytest.raises(ValueError, match="size must be a positive int"):
        camera_rays(Camera(), 0)
