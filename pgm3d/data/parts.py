"""Batched parametric part primitives for the procedural shape families.

Every primitive holds the parameters of ``N`` shapes at once (leading dimension ``N``) and
offers three views of the same surface:

* :meth:`Part.surface` -- ``m`` points at **fixed parametric coordinates** with analytic outward
  unit normals, so point ``i`` of a part lands on the same region of every shape (dense
  correspondence, as in the part-segmented data of Huang et al. 2015 used by ShapeVAE);
* :meth:`Part.implicit` -- a function that is negative inside, zero on the surface and positive
  outside, used to test points and to voxelise the part exactly at voxel centres;
* :meth:`Part.mesh` -- a closed, outward-oriented triangle mesh (shared faces, per-shape vertices).

Parametric coordinates come from low-discrepancy sequences (Roberts' R2 sequence on faces,
the Fibonacci lattice on spheres), so points are well spread for any count ``m`` and identical
for every shape.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "Bent",
    "Box",
    "Ellipsoid",
    "Frustum",
    "Mirrored",
    "Moved",
    "Part",
    "Symmetrized",
    "Torus",
    "frame_from_up",
    "rotation_about",
    "rotation_x",
    "rotation_y",
    "subdivide",
]

_PLASTIC = 1.324717957244746  # root of x^3 = x + 1; generates Roberts' R2 sequence


def r2_sequence(m: int, dtype=torch.float64) -> torch.Tensor:
    """The first ``m`` points of Roberts' R2 low-discrepancy sequence in the open unit square.

    :returns: ``(m, 2)``.
    """
    i = torch.arange(1, m + 1, dtype=dtype).unsqueeze(-1)
    alpha = torch.tensor([1 / _PLASTIC, 1 / _PLASTIC**2], dtype=dtype)
    return torch.frac(0.5 + i * alpha)


def fibonacci_sphere(m: int, dtype=torch.float64) -> torch.Tensor:
    """``m`` unit vectors on the Fibonacci lattice (near-uniform on the sphere). ``(m, 3)``."""
    i = torch.arange(m, dtype=dtype)
    z = 1 - (2 * i + 1) / m
    r = (1 - z * z).clamp_min(0).sqrt()
    phi = i * math.pi * (3 - math.sqrt(5))
    return torch.stack([r * phi.cos(), r * phi.sin(), z], -1)


def allocate(m: int, weights: list[float]) -> list[int]:
    """Split ``m`` points over surface pieces in proportion to ``weights`` (largest remainder).

    The split depends only on the part's *nominal* proportions, never on one shape's, so the
    parametric coordinates -- and hence correspondences -- are the same for every shape.
    """
    total = sum(weights)
    raw = [m * w / total for w in weights]
    counts = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda k: counts[k] - raw[k])
    for k in order[: m - sum(counts)]:
        counts[k] += 1
    return counts


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def rotation_x(angle: torch.Tensor) -> torch.Tensor:
    """Rotations about the x axis by ``angle`` (N,) radians: ``(N, 3, 3)``."""
    c, s, o, z = angle.cos(), angle.sin(), torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(*angle.shape, 3, 3)


def rotation_y(angle: torch.Tensor) -> torch.Tensor:
    """Rotations about the (up) y axis by ``angle`` (N,) radians: ``(N, 3, 3)``."""
    c, s, o, z = angle.cos(), angle.sin(), torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(*angle.shape, 3, 3)


def frame_from_up(up: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Right-handed orthonormal frames ``[e1, e2, e3]`` (columns) with ``e3 = up / |up|`` and
    ``e1`` the normalised component of ``ref`` orthogonal to ``up``. ``(N, 3, 3)``.
    """
    e3 = _normalize(up)
    ref = ref.expand_as(e3)
    e1 = _normalize(ref - (ref * e3).sum(-1, keepdim=True) * e3)
    return torch.stack([e1, torch.linalg.cross(e3, e1), e3], -1)


class Part:
    """A batch of ``N`` instances of one surface primitive.

    :param tuple nominal: the part's nominal proportions, used only to split points over its
        faces (see :func:`allocate`).
    """

    #: fixed number of mesh vertices per shape; faces are shared by all shapes
    faces: torch.Tensor

    def __len__(self) -> int:
        return self.num_shapes

    @property
    def num_shapes(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index) -> Part:
        """The same primitive for a subset of shapes (every per-shape field is indexed)."""
        new = object.__new__(type(self))
        for key, value in vars(self).items():
            if (
                isinstance(value, torch.Tensor)
                and value.dim()
                and value.shape[0] == self.num_shapes
            ):
                value = value[index]
            elif isinstance(value, Part):
                value = value[index]
            setattr(new, key, value)
        return new

    def surface(self, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``m`` points per shape at fixed parametric coordinates and their outward unit normals.

        :returns: ``points (N, m, 3)``, ``normals (N, m, 3)``.
        """
        raise NotImplementedError

    def implicit(self, x: torch.Tensor) -> torch.Tensor:
        """``f(x)`` for ``x (N, G, 3)``: negative inside, zero on the surface, positive outside."""
        raise NotImplementedError

    def mesh(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A closed, outward-oriented triangle mesh: ``vertices (N, V, 3)``, ``faces (F, 3)``."""
        raise NotImplementedError


# Quads of a hexahedron with corners 0-3 (bottom ring) and 4-7 (top ring, k+4 above k), each
# listed counter-clockwise seen from outside when the corners are right-handed.
_HEX_QUADS = torch.tensor(
    [[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]]
)
_SIGNS = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])


class Box(Part):
    """A convex hexahedron with planar faces: a loft between two parallel rectangles.

    Covers cuboids (seats, table tops), tapered and swept slabs (wings, fins, chair backs) and
    truncated pyramids. A point at parametric ``(u, v)`` on the quad ``(a, b, c, d)`` is the
    bilinear blend ``(1-u)(1-v) a + u(1-v) b + uv c + (1-u)v d``; on a planar quad this stays on
    the face, whose outward unit normal is ``(c - a) x (d - b) / |.|``.

    :param torch.Tensor corners: ``(N, 8, 3)``, right-handed (positive volume), faces planar.
    :param tuple nominal: nominal half-extents ``(e1, e2, e3)`` for the split of points.
    """

    def __init__(self, corners: torch.Tensor, nominal=(1.0, 1.0, 1.0)):
        self.corners = corners
        a, b, c = nominal
        # face areas of the nominal box, in _HEX_QUADS order
        self.weights = [a * b, a * b, a * c, b * c, a * c, b * c]

    @classmethod
    def loft(cls, frame, c0, h0, c1, h1, nominal=(1.0, 1.0, 1.0)) -> Box:
        """The loft from the rectangle centred at ``c0`` with half-extents ``h0`` along the frame's
        ``e1, e2`` to the rectangle at ``c1`` with half-extents ``h1``; ``c1 - c0`` must point
        along ``+e3``.

        :param frame: ``(N, 3, 3)`` right-handed orthonormal columns ``e1, e2, e3``.
        :param c0, c1: ``(N, 3)`` rectangle centres. :param h0, h1: ``(N, 2)`` half-extents.
        """
        signs = _SIGNS.to(frame)

        def ring(c, h):
            return c.unsqueeze(1) + torch.einsum(
                "nij,nkj->nki", frame[..., :2], signs * h.unsqueeze(1)
            )

        return cls(torch.cat([ring(c0, h0), ring(c1, h1)], 1), nominal)

    @classmethod
    def cuboid(cls, center, half, frame=None, nominal=None) -> Box:
        """A cuboid with half-extents ``half (N, 3)`` along the columns of ``frame``."""
        if frame is None:
            frame = torch.eye(3, dtype=center.dtype).expand(center.shape[0], 3, 3)
        e3 = frame[..., 2]
        off = half[:, 2:] * e3
        nominal = nominal or tuple(half.mean(0).tolist())
        return cls.loft(frame, center - off, half[:, :2], center + off, half[:, :2], nominal)

    @property
    def num_shapes(self) -> int:
        return self.corners.shape[0]

    def _quads(self) -> torch.Tensor:
        return self.corners[:, _HEX_QUADS]  # (N, 6, 4, 3)

    def _planes(self) -> tuple[torch.Tensor, torch.Tensor]:
        q = self._quads()
        normal = _normalize(torch.linalg.cross(q[:, :, 2] - q[:, :, 0], q[:, :, 3] - q[:, :, 1]))
        offset = (normal * q.mean(2)).sum(-1)
        return normal, offset  # (N, 6, 3), (N, 6)

    def surface(self, m):
        q = self._quads()
        normal, _ = self._planes()
        points, normals = [], []
        for f, count in enumerate(allocate(m, self.weights)):
            if count == 0:
                continue
            uv = r2_sequence(count, q.dtype).to(q.device)
            u, v = uv[:, :1], uv[:, 1:]
            w = torch.cat([(1 - u) * (1 - v), u * (1 - v), u * v, (1 - u) * v], -1)  # (c, 4)
            points.append(torch.einsum("ck,nkd->ncd", w, q[:, f]))
            normals.append(normal[:, f : f + 1].expand(-1, count, -1))
        return torch.cat(points, 1), torch.cat(normals, 1)

    def implicit(self, x):
        # For a convex polytope the largest signed plane distance is 0 exactly on the boundary.
        normal, offset = self._planes()
        return (torch.einsum("ngd,nfd->ngf", x, normal) - offset.unsqueeze(1)).amax(-1)

    def mesh(self):
        quads = _HEX_QUADS.to(self.corners.device)
        faces = torch.cat([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
        return self.corners, faces


class Frustum(Part):
    """A closed truncated cone from ``a`` to ``b`` (cylinder if ``r0 == r1``, cone if ``r1 == 0``).

    With axis ``w = (b - a)/L``, radial direction ``d(θ) = cos θ e1 + sin θ e2`` and radius
    ``r(t) = r0 + t (r1 - r0)``, the side is ``a + t L w + r(t) d(θ)`` with outward normal
    ``∝ d(θ) + (r0 - r1)/L · w``; the caps have normals ``∓w``.

    :param a, b: ``(N, 3)`` end centres. :param r0, r1: ``(N,)`` end radii.
    :param ref: ``(3,)`` direction of ``θ = 0`` (projected off the axis), the same for all shapes
        so that correspondences hold.
    :param tuple nominal: nominal ``(r0, r1, length)`` for the split of points.
    """

    segments = 24

    def __init__(self, a, b, r0, r1, ref=(0.0, 0.0, 1.0), nominal=(1.0, 1.0, 1.0)):
        self.a, self.b, self.r0, self.r1 = a, b, r0, r1
        self.frame = frame_from_up(b - a, torch.tensor(ref, dtype=a.dtype, device=a.device))
        self.length = (b - a).norm(dim=-1)
        n0, n1, length = nominal
        slant = math.hypot(length, n0 - n1)
        self.weights = [math.pi * (n0 + n1) * slant, math.pi * n0**2, math.pi * n1**2]

    @property
    def num_shapes(self) -> int:
        return self.a.shape[0]

    def _radial(self, theta):
        e1, e2 = self.frame[..., 0], self.frame[..., 1]
        return theta.cos()[:, None] * e1[:, None] + theta.sin()[:, None] * e2[:, None]

    def surface(self, m):
        side, cap0, cap1 = allocate(m, self.weights)
        w = self.frame[..., 2].unsqueeze(1)
        dr = (self.r1 - self.r0)[:, None, None]
        length = self.length[:, None, None]
        points, normals = [], []
        if side:
            uv = r2_sequence(side, self.a.dtype).to(self.a.device)
            theta, t = 2 * math.pi * uv[:, 0], uv[:, 1:]
            d = self._radial(theta)
            points.append(self.a[:, None] + t * length * w + (self.r0[:, None, None] + t * dr) * d)
            normals.append(_normalize(d - dr / length * w))
        for count, centre, radius, sign in (
            (cap0, self.a, self.r0, -1.0),
            (cap1, self.b, self.r1, 1.0),
        ):
            if count:
                uv = r2_sequence(count, self.a.dtype).to(self.a.device)
                d = self._radial(2 * math.pi * uv[:, 0])
                rho = uv[:, 1].sqrt()[:, None] * radius[:, None, None]
                points.append(centre[:, None] + rho * d)
                normals.append((sign * w).expand(-1, count, -1))
        return torch.cat(points, 1), torch.cat(normals, 1)

    def implicit(self, x):
        w = self.frame[..., 2].unsqueeze(1)
        rel = x - self.a[:, None]
        h = (rel * w).sum(-1)
        rho = (rel - h[..., None] * w).norm(dim=-1)
        length = self.length[:, None]
        slope = (self.r1 - self.r0)[:, None] / length
        side = (rho - self.r0[:, None] - slope * h) / (1 + slope**2).sqrt()
        return torch.stack([side, -h, h - length], -1).amax(-1)

    def mesh(self):
        k = self.segments
        theta = torch.arange(k, dtype=self.a.dtype, device=self.a.device) * (2 * math.pi / k)
        d = self._radial(theta)
        ring0 = self.a[:, None] + self.r0[:, None, None] * d
        ring1 = self.b[:, None] + self.r1[:, None, None] * d
        vertices = torch.cat([ring0, ring1, self.a[:, None], self.b[:, None]], 1)
        i = torch.arange(k, device=self.a.device)
        j = (i + 1) % k
        c0 = torch.full_like(i, 2 * k)
        faces = torch.cat(
            [
                torch.stack([i, j, j + k], -1),
                torch.stack([i, j + k, i + k], -1),
                torch.stack([c0, j, i], -1),
                torch.stack([c0 + 1, i + k, j + k], -1),
            ]
        )
        return vertices, faces


class _Posed(Part):
    """A primitive placed at ``center (N, 3)`` with orientation ``frame (N, 3, 3)`` (columns are
    its axes; identity by default)."""

    def __init__(self, center, frame=None):
        if frame is None:
            frame = torch.eye(3, dtype=center.dtype, device=center.device).expand(len(center), 3, 3)
        self.center, self.frame = center, frame

    @property
    def num_shapes(self) -> int:
        return self.center.shape[0]


class Ellipsoid(_Posed):
    """An ellipsoid ``c + R (s ⊙ u)``, ``|u| = 1``, with outward normal ``∝ R (u / s)``.

    :param center: ``(N, 3)``. :param semi: ``(N, 3)`` semi-axes.
    :param frame: ``(N, 3, 3)`` rotation
        (columns are the axes); identity by default.
    """

    rings, segments = 12, 24

    def __init__(self, center, semi, frame=None):
        super().__init__(center, frame)
        self.semi = semi

    def _place(self, u):
        points = self.center[:, None] + torch.einsum(
            "nij,nmj->nmi", self.frame, self.semi[:, None] * u
        )
        normals = _normalize(torch.einsum("nij,nmj->nmi", self.frame, u / self.semi[:, None]))
        return points, normals

    def surface(self, m):
        u = fibonacci_sphere(m, self.center.dtype).to(self.center.device)
        return self._place(u.expand(self.num_shapes, -1, -1))

    def implicit(self, x):
        q = torch.einsum("nji,ngj->ngi", self.frame, x - self.center[:, None]) / self.semi[:, None]
        # |q| - 1 divided by its gradient norm: a first-order distance, so thresholds near the
        # surface mean the same for long and flat ellipsoids
        k0, k1 = q.norm(dim=-1), (q / self.semi[:, None]).norm(dim=-1)
        centre = -self.semi.amin(-1, keepdim=True).expand_as(k0)
        return torch.where(k1 > 0, k0 * (k0 - 1) / k1.clamp_min(1e-300), centre)

    def mesh(self):
        r, k = self.rings, self.segments
        dev, dt = self.center.device, self.center.dtype
        polar = torch.arange(1, r, dtype=dt, device=dev) * (math.pi / r)
        az = torch.arange(k, dtype=dt, device=dev) * (2 * math.pi / k)
        ring = torch.stack(
            [
                polar.sin()[:, None] * az.cos(),
                polar.sin()[:, None] * az.sin(),
                polar.cos()[:, None].expand(-1, k),
            ],
            -1,
        ).reshape(-1, 3)
        poles = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]], dtype=dt, device=dev)
        vertices, _ = self._place(torch.cat([ring, poles]).expand(self.num_shapes, -1, -1))
        i = torch.arange(k, device=dev)
        j = (i + 1) % k
        faces = [torch.stack([torch.full_like(i, (r - 1) * k), j, i], -1)]  # north cap
        for band in range(r - 2):
            top, bot = band * k, (band + 1) * k
            faces += [
                torch.stack([top + i, top + j, bot + j], -1),
                torch.stack([top + i, bot + j, bot + i], -1),
            ]
        last = (r - 2) * k
        faces.append(torch.stack([torch.full_like(i, (r - 1) * k + 1), last + i, last + j], -1))
        # the bands above run clockwise seen from outside; reverse them to face outward
        return vertices, torch.cat(faces).flip(-1)


class Torus(_Posed):
    """A torus around the axis ``w`` (frame column 3) with major radius ``R`` and minor ``r``:
    points ``c + (R + r cos φ) d(θ) + r sin φ w`` with outward normal ``cos φ d(θ) + sin φ w``.

    :param center: ``(N, 3)``. :param major, minor: ``(N,)``. :param frame: ``(N, 3, 3)``.
    """

    rings, segments = 12, 32

    def __init__(self, center, major, minor, frame=None):
        super().__init__(center, frame)
        self.major, self.minor = major, minor

    def _place(self, theta, phi):
        e1, e2, w = (self.frame[..., k][:, None] for k in range(3))
        d = theta.cos()[:, None] * e1 + theta.sin()[:, None] * e2
        normal = phi.cos()[:, None] * d + phi.sin()[:, None] * w
        points = (
            self.center[:, None]
            + self.major[:, None, None] * d
            + self.minor[:, None, None] * normal
        )
        return points, normal

    def surface(self, m):
        uv = 2 * math.pi * r2_sequence(m, self.center.dtype).to(self.center.device)
        return self._place(uv[:, 0], uv[:, 1])

    def implicit(self, x):
        q = torch.einsum("nji,ngj->ngi", self.frame, x - self.center[:, None])
        rho = q[..., :2].norm(dim=-1)
        return ((rho - self.major[:, None]) ** 2 + q[..., 2] ** 2).sqrt() - self.minor[:, None]

    def mesh(self):
        r, k = self.rings, self.segments
        dev = self.center.device
        theta = torch.arange(k, device=dev).repeat_interleave(r) * (2 * math.pi / k)
        phi = torch.arange(r, device=dev).repeat(k) * (2 * math.pi / r)
        vertices, _ = self._place(theta.to(self.center.dtype), phi.to(self.center.dtype))
        a = torch.arange(k * r, device=dev)
        ti, pi = a // r, a % r
        idx = lambda t, p: (t % k) * r + p % r  # noqa: E731
        b, c, d = idx(ti + 1, pi), idx(ti + 1, pi + 1), idx(ti, pi + 1)
        return vertices, torch.cat([torch.stack([a, b, c], -1), torch.stack([a, c, d], -1)])


_MIRROR = torch.tensor([-1.0, 1.0, 1.0])


class _Wrapper(Part):
    """A part defined by another part (its geometry is shared, its sampling or pose differs)."""

    def __init__(self, part: Part):
        self.part = part

    @property
    def num_shapes(self) -> int:
        return self.part.num_shapes


class Mirrored(_Wrapper):
    """The reflection of ``part`` in the plane ``x = 0`` (the families' symmetry plane).

    Point ``i`` of the mirrored part is the reflection of point ``i`` of ``part``, so left and
    right parts correspond exactly; the mesh's faces are reversed to stay outward.
    """

    def surface(self, m):
        p, n = self.part.surface(m)
        return p * _MIRROR.to(p), n * _MIRROR.to(n)

    def implicit(self, x):
        return self.part.implicit(x * _MIRROR.to(x))

    def mesh(self):
        v, f = self.part.mesh()
        return v * _MIRROR.to(v), f.flip(-1)


class Symmetrized(_Wrapper):
    """A part that is itself symmetric about ``x = 0`` (a seat, a fuselage), sampled so that its
    *point set* is symmetric too: the second half of the points mirrors the first half.
    """

    def surface(self, m):
        p, n = self.part.surface(m - m // 2)
        mirror = _MIRROR.to(p)
        return torch.cat([p, p[:, : m // 2] * mirror], 1), torch.cat(
            [n, n[:, : m // 2] * mirror], 1
        )

    def implicit(self, x):
        return self.part.implicit(x)

    def mesh(self):
        return self.part.mesh()


def subdivide(vertices: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of midpoint subdivision: every triangle becomes four, every edge gets its
    midpoint (shared by the two triangles on it, so a closed mesh stays closed).

    :param vertices: ``(N, V, 3)``. :param faces: ``(F, 3)`` shared by all ``N`` shapes.
    :returns: ``(N, V + E, 3)`` vertices and ``(4F, 3)`` faces, orientation kept.
    """
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    unique, index = torch.unique(edges.sort(-1).values, dim=0, return_inverse=True)
    mid = (vertices[:, unique[:, 0]] + vertices[:, unique[:, 1]]) / 2
    m = index.reshape(3, -1) + vertices.shape[1]  # midpoints of edges (ab, bc, ca) per face
    a, b, c = faces.unbind(-1)
    new = torch.cat(
        [
            torch.stack([a, m[0], m[2]], -1),
            torch.stack([m[0], b, m[1]], -1),
            torch.stack([m[2], m[1], c], -1),
            torch.stack([m[0], m[1], m[2]], -1),
        ]
    )
    return torch.cat([vertices, mid], 1), new


class Bent(_Wrapper):
    """``part`` bent along a circular arc: Barr's (1984) global bending deformation.

    In the frame at ``origin`` with unit ``axis`` :math:`u` (the direction the part extends
    along), unit bend ``direction`` :math:`v \\perp u` and :math:`b = u \\times v`, a point with
    local coordinates :math:`(s, w, t)` maps to

    .. math:: o + (1 - \\kappa w) \\frac{\\sin \\kappa s}{\\kappa} u
              + \\Big(\\frac{1 - \\cos \\kappa s}{\\kappa} + w \\cos \\kappa s\\Big) v + t b,

    so the line :math:`w = t = 0` becomes an arc of curvature :math:`\\kappa` turning towards
    :math:`v` (:math:`\\kappa < 0`: away from it; :math:`\\kappa = 0`: no change). The Jacobian is
    the rotation by :math:`\\kappa s` in the :math:`(u, v)` plane times
    :math:`\\mathrm{diag}(1 - \\kappa w, 1, 1)`, so normals map by the inverse transpose exactly
    and the surface's point correspondences are kept. The map is invertible while
    :math:`\\kappa w < 1` on the part (the part is thinner than the bend's radius) and the arc
    turns by less than :math:`\\pi`; :meth:`implicit` evaluates the part at the inverse image.

    :param origin, axis, direction: ``(N, 3)``; ``axis`` and ``direction`` orthonormal.
    :param curvature: ``(N,)`` signed curvature :math:`\\kappa` (1 / length).
    :param int levels: midpoint subdivisions of the part's mesh before bending (a box's 12
        triangles become 768 at 3), so the mesh follows the arc.
    """

    def __init__(self, part: Part, origin, axis, direction, curvature, levels: int = 3):
        super().__init__(part)
        self.origin, self.curvature, self.levels = origin, curvature, levels
        self.basis = torch.stack([axis, direction, torch.linalg.cross(axis, direction)], -1)

    def _local(self, x):
        return torch.einsum("nji,nmj->nmi", self.basis, x - self.origin[:, None])

    def _angles(self, s):
        theta = self.curvature[:, None] * s
        return (
            theta,
            torch.sinc(theta / math.pi),
            0.5 * theta * torch.sinc(theta / 2 / math.pi) ** 2,
        )

    def _forward(self, x, normals=None):
        s, w, t = self._local(x).unbind(-1)
        k = self.curvature[:, None]
        theta, sinc, versinc = self._angles(s)  # sin(θ)/θ and (1 - cos θ)/θ
        local = torch.stack([(1 - k * w) * s * sinc, s * versinc + w * theta.cos(), t], -1)
        x = self.origin[:, None] + torch.einsum("nij,nmj->nmi", self.basis, local)
        if normals is None:
            return x
        nu, nv, nb = torch.einsum("nji,nmj->nmi", self.basis, normals).unbind(-1)
        nu = nu / (1 - k * w)
        c, si = theta.cos(), theta.sin()
        n = torch.stack([nu * c - nv * si, nu * si + nv * c, nb], -1)
        n = torch.einsum("nij,nmj->nmi", self.basis, n)
        return x, _normalize(n)

    def surface(self, m):
        p, n = self.part.surface(m)
        return self._forward(p, n)

    def implicit(self, x):
        qu, qv, t = self._local(x).unbind(-1)
        k = self.curvature[:, None]
        h = torch.hypot(k * qu, 1 - k * qv)  # 1 - κw, the distance to the centre in units 1/κ
        w = (2 * qv - k * (qu**2 + qv**2)) / (1 + h)  # (1 - h) / κ without cancellation
        theta = torch.atan2(k * qu, 1 - k * qv)
        s = torch.where(k.abs() > 1e-12, theta / torch.where(k == 0, 1.0, k), qu)
        rest = torch.stack([s, w, t], -1)
        return self.part.implicit(
            self.origin[:, None] + torch.einsum("nij,nmj->nmi", self.basis, rest)
        )

    def mesh(self):
        v, f = self.part.mesh()
        for _ in range(self.levels):
            v, f = subdivide(v, f)
        return self._forward(v), f


class Moved(_Wrapper):
    """``part`` turned by ``rotation (N, 3, 3)`` about ``pivot (N, 3)``, then moved by ``shift
    (N, 3)`` (none by default): an articulated joint (a steering axis, a crank, a reclining
    back) or a placement. Points and normals rotate; the implicit is the part's at the inverse
    image."""

    def __init__(self, part: Part, rotation, pivot, shift=None):
        super().__init__(part)
        self.rotation, self.pivot = rotation, pivot
        self.shift = torch.zeros_like(pivot) if shift is None else shift

    def _apply(self, x):
        turned = torch.einsum("nij,nmj->nmi", self.rotation, x - self.pivot[:, None])
        return (self.pivot + self.shift)[:, None] + turned

    def surface(self, m):
        p, n = self.part.surface(m)
        return self._apply(p), torch.einsum("nij,nmj->nmi", self.rotation, n)

    def implicit(self, x):
        rel = x - (self.pivot + self.shift)[:, None]
        back = torch.einsum("nji,nmj->nmi", self.rotation, rel)
        return self.part.implicit(self.pivot[:, None] + back)

    def mesh(self):
        v, f = self.part.mesh()
        return self._apply(v), f


def rotation_about(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotations by ``angle (N,)`` radians about unit ``axis (N, 3)`` (Rodrigues): ``(N, 3, 3)``."""
    k = torch.zeros(*axis.shape[:-1], 3, 3, dtype=axis.dtype, device=axis.device)
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    k = k - k.transpose(-1, -2)
    eye = torch.eye(3, dtype=axis.dtype, device=axis.device)
    s, c = angle.sin()[..., None, None], angle.cos()[..., None, None]
    return eye + s * k + (1 - c) * k @ k
