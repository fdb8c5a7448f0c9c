import math

import pytest
import torch

from pgm3d.data.mesh import Mesh
from pgm3d.data.parts import (
    Bent,
    Box,
    Ellipsoid,
    Frustum,
    Mirrored,
    Moved,
    Symmetrized,
    Torus,
    allocate,
    fibonacci_sphere,
    frame_from_up,
    r2_sequence,
    rotation_about,
    rotation_x,
    subdivide,
)


def _rand(n, *shape, lo=0.2, hi=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, *shape, generator=g, dtype=torch.float64)


def _primitives(n=5):
    tilt = rotation_x(_rand(n, lo=-0.5, hi=0.5))
    frame = frame_from_up(
        _rand(n, 3, lo=-1, hi=1) + torch.tensor([0, 3.0, 0]), torch.tensor([0, 0, 1.0])
    )
    box = Box.loft(
        frame,
        _rand(n, 3, lo=-0.2, hi=0.2),
        _rand(n, 2),
        _rand(n, 3) + 2 * frame[..., 2],
        _rand(n, 2, seed=1),
        nominal=(0.5, 0.3, 1.0),
    )
    return {
        "box": box,
        "cuboid": Box.cuboid(_rand(n, 3), _rand(n, 3), frame=tilt),
        "frustum": Frustum(_rand(n, 3), _rand(n, 3) + 1.5, _rand(n), _rand(n, seed=2)),
        "cone": Frustum(
            _rand(n, 3), _rand(n, 3) - 1.5, _rand(n), torch.zeros(n, dtype=torch.float64)
        ),
        "ellipsoid": Ellipsoid(_rand(n, 3), _rand(n, 3, seed=3), tilt),
        "torus": Torus(_rand(n, 3), _rand(n, lo=0.6, hi=1.0), _rand(n, lo=0.1, hi=0.3), tilt),
        "mirrored": Mirrored(box),
        "symmetrized": Symmetrized(Ellipsoid(torch.zeros(n, 3, dtype=torch.float64), _rand(n, 3))),
        # a slab 2 long bent by up to 1.2 rad either way (curvatures -0.6..0.6), and turned
        "bent": Bent(
            box,
            _rand(n, 3, lo=-0.2, hi=0.2),
            frame[..., 2],
            frame[..., 0],
            _rand(n, lo=-0.6, hi=0.6),
        ),
        "moved": Moved(box, rotation_about(frame[..., 0], _rand(n, lo=-3, hi=3)), _rand(n, 3)),
    }


PRIMITIVES = list(_primitives())


@pytest.mark.parametrize("name", PRIMITIVES)
def test_points_lie_on_the_analytic_surface_with_outward_unit_normals(name):
    part = _primitives()[name]
    points, normals = part.surface(301)
    assert points.shape == normals.shape == (5, 301, 3)
    assert part.implicit(points).abs().max() < 1e-12
    torch.testing.assert_close(normals.norm(dim=-1), torch.ones(5, 301, dtype=torch.float64))
    eps = 1e-4
    # outward: a step along the normal leaves the solid, a step against it enters
    assert (part.implicit(points + eps * normals) > 0).all()
    assert (part.implicit(points - eps * normals) < 0).all()


@pytest.mark.parametrize("name", PRIMITIVES)
def test_meshes_are_closed_outward_and_match_the_implicit(name):
    part = _primitives()[name]
    vertices, faces = part.mesh()
    for i in range(part.num_shapes):
        mesh = Mesh(vertices[i], faces)
        assert mesh.is_watertight and mesh.is_oriented
        assert mesh.volume() > 0
    # mesh vertices lie on the analytic surface (the mesh is inscribed in it)
    assert part.implicit(vertices).abs().max() < 1e-12


def test_parametric_coordinates_are_fixed_so_points_correspond():
    a = Box.cuboid(_rand(3, 3), _rand(3, 3))
    # the same part at a different size and place: point i has the same local coordinates
    local_a = (a.surface(50)[0] - a.corners[:, :1]) / (a.corners[:, 6:7] - a.corners[:, :1])
    torch.testing.assert_close(local_a[0], local_a[1])
    torch.testing.assert_close(local_a[0], local_a[2])


def test_mirrored_part_reflects_every_point_in_x():
    box = _primitives()["box"]
    p, n = box.surface(40)
    q, m = Mirrored(box).surface(40)
    torch.testing.assert_close(q, p * torch.tensor([-1.0, 1, 1], dtype=torch.float64))
    torch.testing.assert_close(m, n * torch.tensor([-1.0, 1, 1], dtype=torch.float64))


def test_symmetrized_points_form_a_mirror_symmetric_set():
    part = _primitives()["symmetrized"]
    p, _ = part.surface(40)
    torch.testing.assert_close(
        p[:, 20:], p[:, :20] * torch.tensor([-1.0, 1, 1], dtype=torch.float64)
    )


def test_indexing_a_part_selects_shapes():
    part = _primitives()["mirrored"]
    sub = part[torch.tensor([4, 1])]
    assert sub.num_shapes == 2
    torch.testing.assert_close(sub.surface(10)[0], part.surface(10)[0][[4, 1]])


def test_sequences_and_allocation():
    uv = r2_sequence(1000)
    assert ((uv > 0) & (uv < 1)).all()
    # low discrepancy: every cell of a 10x10 grid gets 10 +- 3 points
    cells = torch.bincount((uv * 10).long()[:, 0] * 10 + (uv * 10).long()[:, 1], minlength=100)
    assert cells.min() >= 7 and cells.max() <= 13
    u = fibonacci_sphere(500)
    torch.testing.assert_close(u.norm(dim=-1), torch.ones(500, dtype=torch.float64))
    assert u.mean(0).abs().max() < 1e-2
    assert allocate(10, [1, 1, 2]) == [2, 3, 5] or sum(allocate(10, [1, 1, 2])) == 10
    assert allocate(7, [0.0, 1.0]) == [0, 7]


def test_frustum_side_normal_has_the_analytic_tilt():
    a = torch.zeros(1, 3, dtype=torch.float64)
    b = torch.tensor([[0.0, 2.0, 0.0]], dtype=torch.float64)
    f = Frustum(
        a,
        b,
        torch.tensor([1.0], dtype=torch.float64),
        torch.tensor([0.5], dtype=torch.float64),
        nominal=(1.0, 0.5, 2.0),
    )
    p, n = f.surface(100)
    side = (p[0, :, 1] > 1e-9) & (p[0, :, 1] < 2 - 1e-9)
    # normal of a cone narrowing upwards leans up by atan((r0 - r1) / L)
    torch.testing.assert_close(
        n[0, side, 1], torch.full_like(n[0, side, 1], math.sin(math.atan(0.25)))
    )


def test_bending_nothing_changes_nothing_and_a_bend_follows_barrs_arc():
    box = _primitives()["box"]
    frame = frame_from_up(torch.tensor([[0, 1.0, 0]] * 5), torch.tensor([0, 0, 1.0]))
    origin = torch.zeros(5, 3, dtype=torch.float64)
    axis, direction = frame[..., 2].double(), frame[..., 0].double()
    flat = Bent(box, origin, axis, direction, torch.zeros(5, dtype=torch.float64))
    for a, b in zip(flat.surface(64), box.surface(64), strict=True):
        torch.testing.assert_close(a, b)
    # a point on the axis at arc length s lands on the circle of radius 1/k through the origin
    k = torch.full((5,), 0.5, dtype=torch.float64)
    bent = Bent(box, origin, axis, direction, k)
    s = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    on_axis = s[None, :, None] * axis[:, None]
    mapped = bent._forward(on_axis)
    centre = origin + direction / k[:, None]
    torch.testing.assert_close(
        (mapped - centre[:, None]).norm(dim=-1), torch.full((5, 4), 2.0, dtype=torch.float64)
    )
    # arc length is kept: the chord from s=0 to s=3 subtends 1.5 rad on a circle of radius 2
    chord = (mapped[:, 3] - mapped[:, 0]).norm(dim=-1)
    torch.testing.assert_close(chord, torch.full((5,), 2 * 2 * math.sin(0.75), dtype=torch.float64))


def test_rotation_about_an_axis_is_rodrigues():
    axis = torch.nn.functional.normalize(_rand(4, 3, lo=-1, hi=1), dim=-1)
    angle = _rand(4, lo=-3, hi=3)
    r = rotation_about(axis, angle)
    torch.testing.assert_close(
        r @ r.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(4, 3, 3)
    )
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close((r @ axis[..., None]).squeeze(-1), axis)  # the axis is fixed
    x_axis = torch.tensor([[1.0, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(rotation_about(x_axis, angle[:1]), rotation_x(angle[:1]))


def test_subdivision_keeps_a_closed_mesh_closed_with_four_times_the_faces():
    v, f = _primitives()["box"].mesh()
    v2, f2 = subdivide(v, f)
    assert len(f2) == 4 * len(f) and v2.shape[1] == v.shape[1] + 18  # a hexahedron has 18 edges
    for i in range(len(v)):
        mesh = Mesh(v2[i], f2)
        assert mesh.is_watertight and mesh.is_oriented
        torch.testing.assert_close(mesh.volume(), Mesh(v[i], f).volume())
