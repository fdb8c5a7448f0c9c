import math

import numpy as np
import pytest
import torch

from pgm3d.data import shapes
from pgm3d.data.parts import fibonacci_sphere
from pgm3d.evaluation import reconstruct_surface, reconstruction
from pgm3d.evaluation.reconstruction import extract_surface, marching_tetrahedra
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


def _sphere_field(n=41, r=0.7):
    axis = np.linspace(-1, 1, n)
    g = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)
    return np.linalg.norm(g, axis=-1) - r, 2 / (n - 1)


def test_scikit_images_marching_cubes_agrees_with_the_fallback():
    pytest.importorskip("skimage")
    values, h = _sphere_field()
    cubes = extract_surface(values, (-1, -1, -1), h, backend="skimage")
    tets = extract_surface(values, (-1, -1, -1), h, backend="tetrahedra")
    truth = 4 / 3 * math.pi * 0.7**3
    for mesh in (cubes, tets):
        assert mesh.is_watertight and mesh.is_oriented
        assert mesh.volume().item() == pytest.approx(truth, rel=0.01)
        assert (mesh.vertices.norm(dim=-1) - 0.7).abs().max() < 0.01
    assert cubes.volume().item() == pytest.approx(tets.volume().item(), rel=0.005)
    assert len(cubes.faces) < len(tets.faces)  # six tetrahedra a cube cut finer
    # an inside-out field (positive inside) still gives an outward mesh
    flipped = extract_surface(-values, (-1, -1, -1), h, backend="skimage")
    assert flipped.volume() > 0


def test_auto_falls_back_to_tetrahedra_without_scikit_image(monkeypatch):
    values, h = _sphere_field(21)
    monkeypatch.setattr(reconstruction, "_has_skimage", lambda: False)
    auto = extract_surface(values, (-1, -1, -1), h)
    assert len(auto.faces) == len(marching_tetrahedra(values, (-1, -1, -1), h).faces)
    monkeypatch.setitem(__import__("sys").modules, "skimage.measure", None)
    with pytest.raises(ImportError, match=r"pgm3d\[mesh\]"):
        extract_surface(values, (-1, -1, -1), h, backend="skimage")
    with pytest.raises(ValueError, match="backend must be one of"):
        extract_surface(values, (-1, -1, -1), h, backend="cubes")


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


def _slab_points(n=4000, seed=0):
    """Dense points on the surface of the box [0, 1] x [0, 1] x [0, 0.05]."""
    from pgm3d.data.parts import Box

    half = torch.tensor([[0.5, 0.5, 0.025]], dtype=torch.float64)
    box = Box.cuboid(half.clone(), half, nominal=(0.5, 0.5, 0.025))
    return box.surface(n)[0][0]


def test_alpha_shape_fills_a_thin_slab_and_tends_to_the_convex_hull():
    from scipy.spatial import ConvexHull

    from pgm3d.evaluation import alpha_shape

    p = _slab_points()
    mesh = alpha_shape(p, 0.12)
    # the boundary of a union of tetrahedra: every edge is on an even number of faces
    f = mesh.faces.numpy()
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts % 2 == 0).all()
    assert mesh.volume().item() == pytest.approx(0.05, rel=0.05)  # the slab, 1 x 1 x 0.05
    hull = alpha_shape(p, 1e6)
    assert hull.volume().item() == pytest.approx(ConvexHull(p.numpy()).volume, rel=1e-9)
    with pytest.raises(ValueError, match="no tetrahedron"):
        alpha_shape(p, 1e-4)
    with pytest.raises(ValueError, match="span no volume"):
        alpha_shape(torch.rand(10, 3) * torch.tensor([1.0, 1.0, 0.0]), 0.5)


def test_embedded_deformation_reproduces_affine_maps_and_the_identity():
    from pgm3d.evaluation import deform_embedded

    g = torch.Generator().manual_seed(0)
    nodes = torch.rand(60, 3, generator=g, dtype=torch.float64).numpy()
    vertices = torch.rand(200, 3, generator=g, dtype=torch.float64).numpy()
    np.testing.assert_allclose(deform_embedded(vertices, nodes, nodes), vertices, atol=1e-12)
    a = np.array([[1.2, 0.1, 0.0], [0.0, 0.9, -0.2], [0.1, 0.0, 1.1]])
    b = np.array([0.3, -0.1, 0.2])
    moved = deform_embedded(vertices, nodes, nodes @ a.T + b, stiffness=1e-12)
    np.testing.assert_allclose(moved, vertices @ a.T + b, atol=1e-8)


def test_template_surface_of_a_database_shape_is_its_own_mesh_and_errors_are_named():
    from pgm3d.evaluation import template_surface

    db = shapes("chairs_nonlinear", 30, seed=0, points_per_part=24, dtype=torch.float64)
    for i in (0, 7):
        mesh, truth = template_surface(db.points[i], db.existence[i], db), db.mesh(i)
        torch.testing.assert_close(mesh.vertices, truth.vertices, atol=1e-9, rtol=0)
        assert torch.equal(mesh.faces, truth.faces)
    # another family's shape is refused by its size
    with pytest.raises(ValueError, match="like the database's"):
        template_surface(torch.zeros(10, 3), torch.ones(2, dtype=torch.bool), db)
    with pytest.raises(ValueError, match="procedural shape set"):
        template_surface(db.points[0], db.existence[0], db[:3].__class__(
            db.points[:3], db.normals[:3], db.existence[:3], db.part_of_point, db.style[:3],
            db.part_names))  # fmt: skip
