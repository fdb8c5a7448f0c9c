import math

import numpy as np
import pytest
import torch

from pgm3d.data import shapes
from pgm3d.data.parts import fibonacci_sphere
from pgm3d.evaluation import reconstruct_surface
from pgm3d.evaluation.reconstruction import marching_tetrahedra
from pgm3d.viz import render_mesh


def test_sphere_from_oriented_points_is_closed_with_the_right_volume_and_radius():
    u = fibonacci_sphere(3000) * 0.8
    mesh = reconstruct_surface(u, u, resolution=40)
    assert mesh.is_watertight and mesh.is_oriented
    assert mesh.volume().item() / (4 / 3 * math.pi * 0.8**3) == pytest.approx(1, abs=0.01)
    r = mesh.vertices.norm(dim=-1)
    assert (r - 0.8).abs().max() < 0.01


def test_marching_tetrahedra_of_an_analytic_field():
    axis = np.linspace(-1, 1, 21)
    g = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)
    mesh = marching_tetrahedra(np.linalg.norm(g, axis=-1) - 0.7, (-1, -1, -1), 0.1)
    assert mesh.is_watertight and mesh.is_oriented and mesh.volume() > 0
    assert (mesh.vertices.norm(dim=-1) - 0.7).abs().max() < 0.02
    with pytest.raises(ValueError, match="no zero crossing"):
        marching_tetrahedra(np.ones((3, 3, 3)), (0, 0, 0), 1.0)


@pytest.mark.parametrize("family", ["chairs", "airplanes"])
def test_procedural_shapes_reconstruct_to_closed_meshes_near_their_volume(family, tmp_path):
    data = shapes(family, 2, seed=0, points_per_part=400, dtype=torch.float64)
    for i in range(2):
        keep = data.point_mask()[i]
        mesh = reconstruct_surface(data.points[i][keep], data.normals[i][keep], resolution=64)
        assert mesh.is_watertight
        assert 0.7 < mesh.volume().item() / data.mesh(i).volume().item() < 1.2
    path = tmp_path / "rec.ply"
    mesh.to_trimesh().export(path)
    assert path.stat().st_size > 1000
    assert render_mesh(mesh, tmp_path / "rec.png").endswith("rec.png")


def test_poisson_needs_open3d_or_says_so():
    u = fibonacci_sphere(500)
    try:
        import open3d  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install open3d"):
            reconstruct_surface(u, u, method="poisson")
        return
    mesh = reconstruct_surface(u, u, method="poisson", resolution=32)
    assert len(mesh.faces) > 100


def test_bad_inputs():
    u = fibonacci_sphere(50)
    with pytest.raises(ValueError, match="method"):
        reconstruct_surface(u, u, method="ball")
    with pytest.raises(ValueError, match=r"\(P, 3\)"):
        reconstruct_surface(u, u[:, :2])
    with pytest.raises(ValueError, match="finite"):
        reconstruct_surface(u[:2], u[:2])
