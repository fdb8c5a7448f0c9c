"""Voxel grids: solid voxelisation of meshes, occupancy of point sets, and a procedural
10-class voxel dataset standing in for ModelNet10 (as used by the Variational Shape Learner,
Liu et al. 2017, and 3D-GAN, Wu et al. 2016).

Grids are indexed ``voxels[..., i, j, k]`` along ``(x, y, z)``; in pgm3d's procedural data ``y``
is up. A grid of resolution ``R`` over the cube ``[lo, hi]^3`` has voxel centres
``lo + (i + 1/2) (hi - lo) / R``; a voxel is occupied when its centre is inside the solid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

import pgm3d.data.families  # noqa: F401  (registers the families named below)
from pgm3d._progress import progress_bar
from pgm3d.data.mesh import Mesh
from pgm3d.data.parts import Box, Ellipsoid, Frustum, Part, Torus, rotation_y
from pgm3d.data.shapes import FAMILIES, shapes

__all__ = [
    "VOXEL_CLASSES",
    "VOXEL_CLASSES_40",
    "VOXEL_SETS",
    "VoxelSet",
    "grid_centers",
    "voxel_classes",
    "voxelize",
]


@dataclass
class VoxelSet:
    """Labelled voxel grids.

    :ivar torch.Tensor voxels: ``(N, R, R, R)`` bool occupancy.
    :ivar torch.Tensor labels: ``(N,)`` long class index.
    :ivar tuple class_names: name of each class index.
    :ivar numpy.ndarray split: ``(N,)`` str, ``"train"``, ``"test"`` or ``""`` (unknown).
    :ivar torch.Tensor angles: ``(N,)`` rotation about the up axis in radians, or None.
    :ivar list sources: file each grid came from, or None.
    """

    voxels: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    split: np.ndarray
    angles: torch.Tensor | None = None
    sources: list[str] | None = None

    def __post_init__(self):
        n = self.voxels.shape[0]
        if self.voxels.dim() != 4 or len(set(self.voxels.shape[1:])) != 1:
            raise ValueError(f"voxels must be (N, R, R, R), got {tuple(self.voxels.shape)}")
        if self.labels.shape != (n,) or self.split.shape != (n,):
            raise ValueError(f"labels and split must have {n} entries")

    def __len__(self) -> int:
        return self.voxels.shape[0]

    @property
    def resolution(self) -> int:
        return self.voxels.shape[-1]

    def __getitem__(self, index) -> VoxelSet:
        idx = torch.as_tensor(index) if not isinstance(index, slice) else index
        np_idx = idx.cpu().numpy() if isinstance(idx, torch.Tensor) else idx
        return replace(
            self,
            voxels=self.voxels[idx],
            labels=self.labels[idx],
            split=np.atleast_1d(self.split[np_idx]),
            angles=None if self.angles is None else self.angles[idx],
            sources=None if self.sources is None else list(np.asarray(self.sources)[np_idx]),
        )

    def subset(self, split: str) -> VoxelSet:
        """The grids of one split (``"train"`` or ``"test"``)."""
        return self[torch.from_numpy(self.split == split)]


def grid_centers(
    resolution: int, lo=-1.0, hi=1.0, *, dtype=torch.float64, device=None
) -> torch.Tensor:
    """``(R, R, R, 3)`` voxel centres of the cube ``[lo, hi]^3``."""
    c = lo + (torch.arange(resolution, dtype=dtype, device=device) + 0.5) * ((hi - lo) / resolution)
    return torch.stack(torch.meshgrid(c, c, c, indexing="ij"), -1)


def _check_resolution(resolution) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    return resolution


def _fit(lo3: torch.Tensor, hi3: torch.Tensor, resolution: int, padding: int):
    """Cube ``[lo, hi]`` (per axis) centred on a bounding box, with the box's largest side filling
    ``resolution - 2 padding`` voxels."""
    if not 0 <= padding < resolution / 2:
        raise ValueError(f"padding must be in [0, {resolution / 2}), got {padding}")
    centre, extent = (lo3 + hi3) / 2, (hi3 - lo3).amax().clamp_min(1e-12)
    half = extent / 2 * resolution / (resolution - 2 * padding)
    return centre - half, centre + half


def voxelize(
    shape,
    resolution: int = 32,
    *,
    bounds=None,
    padding: int = 0,
    solid: bool = True,
    rule: str = "auto",
) -> torch.Tensor:
    """Voxelise a triangle mesh (solid occupancy) or a point set (occupied cells).

    **Meshes.** A ray is cast along ``+z`` through each column of voxel centres; each crossing
    of a triangle adds ``-sign(n_z)`` to the winding number of the centres above it (Möller and
    Trumbore's barycentric test in projection). With ``rule="nonzero"`` a centre is inside when
    its winding number is non-zero, which is exact for closed, consistently oriented meshes,
    including unions of overlapping closed parts; ``rule="parity"`` counts crossings modulo 2,
    which is right for any closed mesh whose parts do not overlap. ``"auto"`` picks nonzero for
    oriented meshes and parity otherwise. Ray columns are offset by a tiny irrational fraction of
    a voxel so rays do not graze edges of axis-aligned meshes.

    :param shape: a :class:`~pgm3d.data.mesh.Mesh`, a ``trimesh.Trimesh``, or points ``(P, 3)``.
    :param int resolution: voxels per side ``R``.
    :param bounds: ``(lo, hi)`` of the cube to voxelise, scalars or ``(3,)`` each; default: the
        shape's bounding box, centred, largest side filling ``R - 2 padding`` voxels.
    :param bool solid: meshes only: fill the interior (needs a watertight mesh), else mark the
        voxels the surface passes through.
    :param str rule: ``"auto"``, ``"nonzero"`` or ``"parity"``.
    :returns: ``(R, R, R)`` bool on the shape's device.
    :raises ValueError: an empty shape, a non-watertight mesh with ``solid=True`` (the message
        names the mesh's file), a bad resolution or rule.
    """
    resolution = _check_resolution(resolution)
    if rule not in ("auto", "nonzero", "parity"):
        raise ValueError(f"rule must be 'auto', 'nonzero' or 'parity', got {rule!r}")
    if not isinstance(shape, Mesh | torch.Tensor | np.ndarray):
        if hasattr(shape, "faces") and hasattr(shape, "vertices"):
            shape = Mesh.from_trimesh(shape)
        else:
            raise TypeError(
                f"voxelize takes a Mesh, a trimesh.Trimesh or points, got {type(shape).__name__}"
            )
    points = shape.vertices if isinstance(shape, Mesh) else torch.as_tensor(shape)
    if points.dim() != 2 or points.shape[-1] != 3 or not points.is_floating_point():
        raise ValueError(f"points must be a float (P, 3) tensor, got {tuple(points.shape)}")
    if len(points) == 0 or (isinstance(shape, Mesh) and shape.is_empty):
        raise ValueError(
            f"cannot voxelise an empty {'mesh' if isinstance(shape, Mesh) else 'point set'}"
            + (f" ({shape.source})" if isinstance(shape, Mesh) and shape.source else "")
        )
    if not torch.isfinite(points).all():
        raise ValueError("points contain NaN or inf")
    device = points.device
    pts = points.double()
    if bounds is None:
        lo, hi = _fit(pts.amin(0), pts.amax(0), resolution, padding)
    else:
        lo, hi = (torch.as_tensor(b, dtype=torch.float64, device=device).expand(3) for b in bounds)
        if (hi <= lo).any():
            raise ValueError(f"bounds must have lo < hi, got {bounds}")
    scale = (hi - lo) / resolution
    if not isinstance(shape, Mesh):
        return _occupy(pts, lo, scale, resolution)
    if not solid:
        return _occupy(_surface_samples(shape, scale.amin()), lo, scale, resolution)
    if not shape.is_watertight:
        raise ValueError(
            f"{shape._name()} is not watertight (some edges are not shared by exactly two faces), "
            "so its inside is undefined; repair it or pass solid=False for surface voxels"
        )
    if rule == "auto":
        rule = "nonzero" if shape.is_oriented else "parity"
    return _solid(shape, lo, scale, resolution, rule)


def _occupy(points, lo, scale, resolution) -> torch.Tensor:
    idx = ((points - lo) / scale).floor().long()
    keep = ((idx >= 0) & (idx < resolution)).all(-1)
    grid = torch.zeros((resolution,) * 3, dtype=torch.bool, device=points.device)
    grid[tuple(idx[keep].T)] = True
    return grid


def _surface_samples(mesh: Mesh, spacing) -> torch.Tensor:
    """Points on every triangle on a barycentric lattice finer than half a voxel."""
    tri = mesh.vertices[mesh.faces].double()
    longest = (tri - tri.roll(1, -2)).norm(dim=-1).amax(-1)
    steps = (longest / (spacing / 2)).ceil().clamp_min(1).long()
    out = [mesh.vertices.double()]
    for s in steps.unique().tolist():
        i, j = torch.meshgrid(torch.arange(s + 1), torch.arange(s + 1), indexing="ij")
        keep = i + j <= s
        w = torch.stack([i[keep], j[keep]], -1).to(tri) / s  # (q, 2)
        t = tri[steps == s]
        out.append(
            (
                t[:, None, 0]
                + w[None, :, :1] * (t[:, None, 1] - t[:, None, 0])
                + w[None, :, 1:] * (t[:, None, 2] - t[:, None, 0])
            ).reshape(-1, 3)
        )
    return torch.cat(out)


def _solid(mesh: Mesh, lo, scale, resolution, rule) -> torch.Tensor:
    device = mesh.vertices.device
    r = resolution
    tri = mesh.vertices[mesh.faces].double()  # (F, 3, 3)
    # ray columns sit at voxel centres offset by a tiny irrational fraction of a voxel, so rays
    # do not run exactly through the edges of axis-aligned meshes
    jitter = torch.tensor([math.sqrt(2) - 1.4142, math.pi - 3.1415, 0.0], dtype=torch.float64)
    g = (tri - lo) / scale - 0.5 - 1e2 * jitter.to(device)  # grid units: column i is at g = i
    a, b, c = g[:, 0], g[:, 1], g[:, 2]
    # 2-D edge functions of the projected triangle; det has the sign of the normal's z part
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    lo_ij = g[..., :2].amin(1).ceil().clamp(0, r).long()
    hi_ij = g[..., :2].amax(1).floor().clamp(-1, r - 1).long()
    span = (hi_ij - lo_ij + 1).clamp_min(0)
    count = span[:, 0] * span[:, 1] * (det.abs() > 1e-300)
    counts = torch.zeros(r * r, r + 1, dtype=torch.long, device=device)
    # candidate (triangle, column) pairs: the columns inside each triangle's bounding box
    bounds = torch.cat([count.new_zeros(1), count.cumsum(0)])
    for start, stop in _chunks(bounds, 1 << 22):
        f = torch.repeat_interleave(torch.arange(start, stop, device=device), count[start:stop])
        local = torch.arange(len(f), device=device) - (bounds[f] - bounds[start])
        i = lo_ij[f, 0] + local // span[f, 1]
        j = lo_ij[f, 1] + local % span[f, 1]
        pi, pj = i.double(), j.double()
        ta, tb, tc, td = a[f], b[f], c[f], det[f]
        w0 = (tb[:, 0] - pi) * (tc[:, 1] - pj) - (tb[:, 1] - pj) * (tc[:, 0] - pi)
        w1 = (tc[:, 0] - pi) * (ta[:, 1] - pj) - (tc[:, 1] - pj) * (ta[:, 0] - pi)
        w2 = td - w0 - w1
        sign = td.sign()
        hit = (w0 * sign >= 0) & (w1 * sign >= 0) & (w2 * sign >= 0)
        w0, w1, w2, ta, tb, tc, td, sign = (t[hit] for t in (w0, w1, w2, ta, tb, tc, td, sign))
        zhit = (w0 * ta[:, 2] + w1 * tb[:, 2] + w2 * tc[:, 2]) / td
        # the crossing counts for the centres above it: first k with k > zhit
        k = zhit.floor().add(1).clamp(0, r).long()
        step = torch.ones_like(k) if rule == "parity" else -sign.long()
        counts.index_put_((i[hit] * r + j[hit], k), step, accumulate=True)
    winding = counts[:, :r].cumsum(-1).reshape(r, r, r)
    return winding % 2 == 1 if rule == "parity" else winding != 0


def _chunks(bounds: torch.Tensor, size: int):
    """Split items ``0..len(bounds)-2`` into runs whose ``bounds`` differences sum to ~``size``."""
    n, start = len(bounds) - 1, 0
    while start < n:
        stop = int(torch.searchsorted(bounds, bounds[start] + size, right=True)) - 1
        stop = min(max(stop, start + 1), n)
        yield start, stop
        start = stop


# ---------------------------------------------------------------------------------------------
# the procedural voxel classes


def _primitive(kind: str, n: int, g: torch.Generator) -> Part:
    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)

    zero = torch.zeros(n, 3, dtype=torch.float64)

    def at_y(y):
        out = zero.clone()
        out[:, 1] = y
        return out

    if kind == "sphere":
        return Ellipsoid(zero, torch.stack([u(0.75, 1.0), u(0.75, 1.0), u(0.75, 1.0)], -1))
    if kind == "box":
        return Box.cuboid(zero, torch.stack([u(0.3, 1.0), u(0.3, 1.0), u(0.3, 1.0)], -1))
    if kind in ("cylinder", "cone"):
        h = u(0.4, 1.0)
        r0 = u(0.3, 0.8) if kind == "cylinder" else u(0.4, 0.9)
        return Frustum(
            at_y(-h), at_y(h), r0, r0 if kind == "cylinder" else torch.zeros(n, dtype=torch.float64)
        )
    if kind == "torus":
        return Torus(
            zero,
            u(0.5, 0.75),
            u(0.12, 0.25),
            frame=torch.tensor(
                [[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]], dtype=torch.float64
            ).expand(n, 3, 3),
        )
    if kind == "pyramid":
        h = u(0.4, 0.9)
        frame = torch.tensor(
            [[0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]], dtype=torch.float64
        )  # z, x, y
        base = torch.stack([u(0.4, 0.9), u(0.4, 0.9)], -1)  # half-extents along z, x
        return Box.loft(frame.expand(n, 3, 3), at_y(-h), base, at_y(h), 0.03 * base)
    if kind == "wedge":  # a prism: the pyramid's loft to a ridge instead of a point
        h = u(0.4, 0.9)
        frame = torch.tensor([[0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]], dtype=torch.float64)
        base = torch.stack([u(0.4, 0.9), u(0.4, 0.9)], -1)
        ridge = torch.stack([0.03 * base[:, 0], base[:, 1]], -1)
        return Box.loft(frame.expand(n, 3, 3), at_y(-h), base, at_y(h), ridge)
    if kind in ("disc", "rod"):
        h, r = (u(0.05, 0.12), u(0.8, 1.0)) if kind == "disc" else (u(0.8, 1.0), u(0.08, 0.15))
        return Frustum(at_y(-h), at_y(h), r, r)
    if kind == "spindle":
        return Ellipsoid(zero, torch.stack([u(0.2, 0.35), u(0.8, 1.0), u(0.2, 0.35)], -1))
    if kind == "slab":
        return Box.cuboid(zero, torch.stack([u(0.7, 1.0), u(0.04, 0.1), u(0.5, 1.0)], -1))
    raise ValueError(kind)


#: class name -> shape family (part-segmented) or primitive
VOXEL_CLASSES = {
    "airplane": "airplanes",
    "chair": "chairs",
    "table": "tables",
    "lamp": "lamps",
    "sphere": None,
    "box": None,
    "cylinder": None,
    "cone": None,
    "torus": None,
    "pyramid": None,
}

#: a 40-class set for the 40-way setting (ModelNet40's place in the VSL paper): every style of
#: every part-based family as its own class (as ModelNet40 separates bench, chair and stool),
#: and eleven primitives; class name -> family, ``(family, style)`` or None (a primitive)
VOXEL_CLASSES_40 = {
    **{
        f"{family}.{style}": (family, style)
        for family in ("chairs", "chairs_nonlinear", "airplanes", "airplanes_nonlinear",
                       "tables", "lamps", "bikes")
        for style in FAMILIES[family].style_names
    },
    **dict.fromkeys(
        ("sphere", "box", "cylinder", "cone", "torus", "pyramid", "wedge", "disc", "rod",
         "spindle", "slab")
    ),
}  # fmt: skip

#: the procedural voxel sets by their number of classes
VOXEL_SETS = {"10": VOXEL_CLASSES, "40": VOXEL_CLASSES_40}


def voxelize_parts(parts, existence, resolution, *, angles=None, padding=2, shell=0.5, batch=64):
    """Voxels of ``N`` shapes made of analytic parts, from the parts' implicit functions: a voxel
    is occupied when ``min_k f_k(centre) < shell * voxel size`` over the present parts. With
    ``shell=0`` that is exact solid occupancy of the centres; the default ``0.5`` also keeps the
    voxels the surface passes within half a voxel of, as surface-plus-fill voxelisation (3D
    ShapeNets) does, so thin parts (legs, poles) stay connected at 30^3 or 32^3. Each shape is
    first rotated by ``angles`` about the up (y) axis, then centred and scaled so that its
    bounding box's largest side fills ``R - 2 padding`` voxels.

    :returns: ``(N, R, R, R)`` bool.
    """
    n = parts[0].num_shapes
    angles = torch.zeros(n, dtype=torch.float64) if angles is None else angles.double()
    rot = rotation_y(angles)  # (N, 3, 3)
    # bounding boxes of the rotated shapes, from dense surface samples and mesh vertices
    lo = torch.full((n, 3), math.inf, dtype=torch.float64)
    hi = -lo
    for k, part in enumerate(parts):
        p = torch.cat([part.surface(512)[0], part.mesh()[0]], 1) @ rot.transpose(-1, -2)
        present = existence[:, k, None]
        lo = torch.minimum(lo, torch.where(present, p.amin(1), math.inf))
        hi = torch.maximum(hi, torch.where(present, p.amax(1), -math.inf))
    centre = (lo + hi) / 2
    half = (hi - lo).amax(-1) / 2 * resolution / (resolution - 2 * padding)
    unit = grid_centers(resolution).reshape(-1, 3)  # in [-1, 1]
    threshold = shell * 2 * half / resolution
    out = torch.zeros(n, resolution**3, dtype=torch.bool)
    for s in range(0, n, batch):
        sl = slice(s, s + batch)
        # grid centre -> rotated-shape coordinates -> shape coordinates (rot is orthogonal)
        x = (centre[sl, None] + half[sl, None, None] * unit) @ rot[sl]
        inside = torch.zeros(x.shape[:2], dtype=torch.bool)
        for k, part in enumerate(parts):
            sub = part[sl]
            inside |= existence[sl, k, None] & (sub.implicit(x) < threshold[sl, None])
        out[sl] = inside
    return out.reshape(n, resolution, resolution, resolution)


def voxel_classes(
    n_per_class: int,
    resolution: int = 32,
    seed: int = 0,
    *,
    classes=None,
    test_fraction: float = 0.2,
    rotate: bool = True,
    padding: int | None = None,
    progress: bool | None = None,
) -> VoxelSet:
    """A procedural stand-in for ModelNet10 (or ModelNet40): ``n_per_class`` solid voxel shapes
    per class.

    Classes (:data:`VOXEL_CLASSES`, the default): airplane, chair, table and lamp from the
    part-based families (all their styles), and sphere (ellipsoid), box, cylinder, cone, torus
    and pyramid with random proportions. ``classes="40"`` takes :data:`VOXEL_CLASSES_40`: each
    style of each family as a class and eleven primitives; a list picks classes of either.
    Each shape is rotated by a uniform random angle about the up axis
    (``rotate=True``), centred and scaled to fill the grid less ``padding`` voxels per side
    (default ``R // 10``, as 3D ShapeNets' 24-in-30 grids). The last ``round(test_fraction *
    n_per_class)`` shapes of each class form the test split.

    :returns: a :class:`VoxelSet` with ``voxels (N, R, R, R)`` bool, ``labels``, ``class_names``,
        ``split`` and ``angles``.
    """
    from pgm3d.data.shapes import _positive

    n_per_class = _positive(n_per_class, "n_per_class")
    resolution = _check_resolution(resolution)
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    known = {**VOXEL_CLASSES, **VOXEL_CLASSES_40}
    if isinstance(classes, str):
        if classes not in VOXEL_SETS:
            raise ValueError(f"unknown voxel set {classes!r}; choose from {list(VOXEL_SETS)}")
        classes = VOXEL_SETS[classes]
    names = list(VOXEL_CLASSES) if classes is None else list(classes)
    for name in names:
        if name not in known:
            raise ValueError(f"unknown voxel class {name!r}; choose from {list(known)}")
    padding = resolution // 10 if padding is None else padding
    g = torch.Generator().manual_seed(seed)
    grids, angles = [], []
    for name in progress_bar(names, desc="voxel classes", progress=progress):
        sub_seed = int(torch.randint(2**31 - 1, (), generator=g))
        family = known[name]
        if family is None:
            parts = [_primitive(name, n_per_class, torch.Generator().manual_seed(sub_seed))]
            existence = torch.ones(n_per_class, 1, dtype=torch.bool)
        else:
            family, styles = (family, None) if isinstance(family, str) else (family[0], family[1:])
            data = shapes(family, n_per_class, seed=sub_seed, points_per_part=8, normals=False,
                          styles=styles)  # fmt: skip
            parts, existence = data.parts, data.existence
        angle = (
            torch.rand(n_per_class, generator=g, dtype=torch.float64) * 2 * math.pi
            if rotate
            else torch.zeros(n_per_class, dtype=torch.float64)
        )
        grids.append(voxelize_parts(parts, existence, resolution, angles=angle, padding=padding))
        angles.append(angle)
    n_test = round(test_fraction * n_per_class)
    split = np.array((["train"] * (n_per_class - n_test) + ["test"] * n_test) * len(names))
    return VoxelSet(
        voxels=torch.cat(grids),
        labels=torch.arange(len(names)).repeat_interleave(n_per_class),
        class_names=tuple(names),
        split=split,
        angles=torch.cat(angles),
    )
