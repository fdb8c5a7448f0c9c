"""Surface reconstruction from oriented points (sampled shapes' points and normals).

* ``"hoppe"``: the signed distance of Hoppe et al. (1992), ``f(x) = n_j · (x - p_j)``
  averaged over the ``k`` nearest samples ``p_j`` with normals ``n_j``, evaluated on a grid
  and contoured by :func:`extract_surface`: scikit-image's marching cubes (Lewiner et al.
  2003) when it is installed (the ``mesh`` extra; 44× faster here on a 97³ grid, see
  ``benchmarks/surfaces.py``), else pgm3d's marching tetrahedra (each cube split into six
  tetrahedra around its main diagonal, so neighbouring cubes agree and the mesh is closed).
  Beyond a band around the samples the value is the distance to the nearest sample, negative
  only for points behind each of their 8 nearest samples (within 60° of the inward normals).
  It expects closed surfaces with outward normals (every part of pgm3d's shapes is closed).
* ``"poisson"``: screened Poisson reconstruction (Kazhdan & Hoppe 2013) through the optional
  package ``open3d``; an :class:`ImportError` says how to install it when it is absent.
* ``"alpha"``: the alpha shape (Edelsbrunner & Mücke 1994; the thesis uses radius 0.12, §3.5):
  the Delaunay tetrahedra (SciPy's Qhull) whose circumradius is below the radius, and the faces
  that only one of them owns. Points only, no normals needed; noisy and uneven where the points
  are, as the thesis observes (Fig. 3.12b).

:func:`template_surface` is the thesis's third method (Fig. 3.12c): each part's mesh from the
nearest shape of a database, deformed to the sample's keypoints.
"""

from __future__ import annotations

import numpy as np
import torch

from pgm3d.data.mesh import Mesh

__all__ = [
    "SURFACE_BACKENDS",
    "alpha_shape",
    "deform_embedded",
    "extract_surface",
    "marching_tetrahedra",
    "reconstruct_surface",
    "signed_distance",
    "template_surface",
]

# the six tetrahedra of a cube sharing its diagonal 0-7 (corner c = x + 2y + 4z)
_TETS = np.array(
    [[0, 1, 3, 7], [0, 1, 5, 7], [0, 2, 3, 7], [0, 2, 6, 7], [0, 4, 5, 7], [0, 4, 6, 7]]
)
_CORNERS = np.array([[c & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)])


def signed_distance(points, normals, queries, k: int = 4) -> np.ndarray:
    """Hoppe et al.'s signed distance at ``queries (Q, 3)``: the inverse-distance weighted mean of
    ``n_j · (x - p_j)`` over the ``k`` nearest oriented samples; negative inside."""
    from scipy.spatial import cKDTree

    p = np.asarray(points, dtype=float)
    n = np.asarray(normals, dtype=float)
    n = n / np.linalg.norm(n, axis=-1, keepdims=True).clip(1e-12)
    dist, idx = cKDTree(p).query(np.asarray(queries, dtype=float), k=k)
    dist, idx = dist.reshape(len(queries), -1), idx.reshape(len(queries), -1)
    plane = np.einsum("qkd,qkd->qk", queries[:, None] - p[idx], n[idx])
    w = 1.0 / (dist + 1e-9)
    return (w * plane).sum(-1) / w.sum(-1)


def marching_tetrahedra(values: np.ndarray, origin, spacing: float) -> Mesh:
    """The zero level set of a grid of values ``(R + 1)^3`` (negative inside) as a closed,
    outward-oriented triangle mesh; grid point ``(i, j, k)`` sits at ``origin + spacing (i, j, k)``.
    """
    v = np.asarray(values, dtype=float).copy()
    # values at (or within rounding of) 0 move outside by a resolvable amount, so that no edge
    # point lands on a grid point: coincident vertices would leave triangles without a normal
    eps = 1e-8 * max(float(np.abs(v).max()), 1e-300)
    v[np.abs(v) < eps] = eps
    if v.ndim != 3 or min(v.shape) < 2:
        raise ValueError(f"values must be a 3-D grid of at least 2^3 points, got {v.shape}")
    shape = np.array(v.shape)
    cubes = np.stack(np.meshgrid(*[np.arange(s - 1) for s in shape], indexing="ij"), -1).reshape(
        -1, 3
    )
    corner = cubes[:, None, :] + _CORNERS[None]  # (C, 8, 3)
    flat = np.ravel_multi_index(tuple(corner.transpose(2, 0, 1)), shape)  # (C, 8)
    tets = flat[:, _TETS].reshape(-1, 4)  # (6C, 4) global grid indices
    f = v.reshape(-1)[tets]
    inside = f < 0
    count = inside.sum(-1)
    mixed = (count > 0) & (count < 4)
    tets, f, inside, count = tets[mixed], f[mixed], inside[mixed], count[mixed]
    edges, owner = [], []
    # one triangle: the lone vertex (inside for count 1, outside for count 3) to the others
    for c in (1, 3):
        rows = np.flatnonzero(count == c)
        lone = np.argmax(inside[rows] if c == 1 else ~inside[rows], axis=-1)
        keep = np.ones((len(rows), 4), dtype=bool)
        keep[np.arange(len(rows)), lone] = False
        others = tets[rows][keep].reshape(-1, 3)
        lone_idx = tets[rows, lone]
        edges.append(np.stack([np.stack([lone_idx, others[:, j]], -1) for j in range(3)], 1))
        owner.append(rows)
    # two triangles: the quad between the two inside (a, b) and two outside (c, d) vertices
    rows = np.flatnonzero(count == 2)
    order = np.argsort(~inside[rows], axis=-1, kind="stable")  # inside first
    a, b, c, d = (tets[rows, order[:, j]] for j in range(4))
    quad = np.stack([np.stack(e, -1) for e in ((a, c), (a, d), (b, d), (b, c))], 1)
    edges += [quad[:, [0, 1, 2]], quad[:, [0, 2, 3]]]
    owner += [rows, rows]
    tri_edges = np.concatenate(edges)  # (T, 3, 2) grid-index pairs
    tri_owner = np.concatenate(owner)
    if len(tri_edges) == 0:
        raise ValueError("the grid has no zero crossing: no surface to extract")
    # one vertex per grid edge, shared by every triangle that crosses it (a closed mesh)
    pairs = np.sort(tri_edges.reshape(-1, 2), axis=-1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    vf = v.reshape(-1)
    f0, f1 = vf[unique[:, 0]], vf[unique[:, 1]]
    t = (f0 / (f0 - f1))[:, None]
    pos = np.stack(np.unravel_index(unique, shape), -1).astype(float)  # (E, 2, 3)
    verts = np.asarray(origin, dtype=float) + spacing * (pos[:, 0] + t * (pos[:, 1] - pos[:, 0]))
    faces = inverse.reshape(-1, 3)
    # orient outwards: the normal points from the tet's inside vertices to its outside ones
    grid = np.stack(np.unravel_index(np.arange(vf.size), shape), -1).astype(float)
    tin = np.where(inside[tri_owner], 1.0, 0.0)
    centre_in = (grid[tets[tri_owner]] * tin[..., None]).sum(1) / tin.sum(1, keepdims=True)
    centre_out = (grid[tets[tri_owner]] * (1 - tin)[..., None]).sum(1) / (1 - tin).sum(
        1, keepdims=True
    )
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flip = (normal * (centre_out - centre_in)).sum(-1) < 0
    faces[flip] = faces[flip][:, ::-1]
    return Mesh(torch.from_numpy(verts), torch.from_numpy(faces.astype(np.int64)))


#: how :func:`extract_surface` contours a grid
SURFACE_BACKENDS = ("auto", "skimage", "tetrahedra")


def extract_surface(values, origin, spacing: float, *, backend: str = "auto") -> Mesh:
    """The zero level set of a grid of values (negative inside) as an outward-oriented
    triangle mesh; grid point ``(i, j, k)`` sits at ``origin + spacing (i, j, k)``.

    :param values: ``(R1, R2, R3)`` grid, at least 2 points on each side.
    :param str backend: ``"skimage"`` (:func:`skimage.measure.marching_cubes`, Lewiner et al.
        2003, the ``mesh`` extra), ``"tetrahedra"`` (:func:`marching_tetrahedra`, no extra, about
        twice the faces), or ``"auto"``: scikit-image when it is installed.
    :raises ImportError: ``backend="skimage"`` without scikit-image.
    """
    if backend not in SURFACE_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(SURFACE_BACKENDS)}, got {backend!r}")
    if backend == "auto":
        backend = "skimage" if _has_skimage() else "tetrahedra"
    if backend == "tetrahedra":
        return marching_tetrahedra(values, origin, spacing)
    try:
        from skimage.measure import marching_cubes
    except ImportError:
        raise ImportError(
            "backend='skimage' needs scikit-image (pip install 'pgm3d[mesh]'); "
            "backend='tetrahedra' needs no extra"
        ) from None
    v = np.asarray(values, dtype=float)
    if v.ndim != 3 or min(v.shape) < 2:
        raise ValueError(f"values must be a 3-D grid of at least 2^3 points, got {v.shape}")
    if not (v.min() < 0 < v.max()):
        raise ValueError("the grid has no zero crossing: no surface to extract")
    verts, faces, _, _ = marching_cubes(v, level=0.0, spacing=(spacing,) * 3)
    verts = torch.from_numpy(verts.astype(float) + np.asarray(origin, dtype=float))
    mesh = Mesh(verts, torch.from_numpy(faces.astype(np.int64)))
    if mesh.volume() < 0:  # the winding is the library's convention: ours is outward
        mesh = Mesh(mesh.vertices, mesh.faces.flip(-1))
    return mesh


def _has_skimage() -> bool:
    from importlib.util import find_spec

    return find_spec("skimage") is not None


def reconstruct_surface(
    points, normals, *, method: str = "hoppe", resolution: int = 48, k: int = 4,
    band: float = 1.5, radius: float = 0.12, backend: str = "auto",
) -> Mesh:  # fmt: skip
    """A triangle mesh through oriented points.

    :param points: ``(P, 3)`` samples on a surface. :param normals: ``(P, 3)`` outward normals.
    :param str method: ``"hoppe"`` (signed distance + marching tetrahedra, no extra),
        ``"poisson"`` (screened Poisson through ``open3d``) or ``"alpha"`` (:func:`alpha_shape`
        of the points with ``radius``; the normals are not used).
    :param int resolution: grid cells along the longest side of the bounding box (hoppe; cells
        are never smaller than the 90th percentile of the gaps between samples), or the octree
        depth's equivalent (poisson uses ``depth = ceil(log2(resolution))``).
    :param int k: neighbours averaged in the signed distance.
    :param float band: beyond ``band`` cells from every sample the value is the distance to the
        nearest sample, negative only behind the 8 nearest samples.
    :param float radius: the alpha shape's radius (the thesis's 0.12).
    :param str backend: how hoppe contours its grid (:func:`extract_surface`).
    """
    p = torch.as_tensor(points).detach().cpu().double().numpy()
    n = torch.as_tensor(normals).detach().cpu().double().numpy()
    if p.ndim != 2 or p.shape[-1] != 3 or n.shape != p.shape:
        raise ValueError(f"points and normals must both be (P, 3), got {p.shape} and {n.shape}")
    if len(p) < max(k, 4) or not (np.isfinite(p).all() and np.isfinite(n).all()):
        raise ValueError("need at least max(k, 4) finite points and normals")
    if method == "poisson":
        return _poisson(p, n, resolution)
    if method == "alpha":
        return alpha_shape(p, radius)
    if method != "hoppe":
        raise ValueError(f"method must be 'hoppe', 'poisson' or 'alpha', got {method!r}")
    from scipy.spatial import cKDTree

    lo, hi = p.min(0), p.max(0)
    tree = cKDTree(p)
    # cells no finer than the samples: the signed distance is only defined near them
    sample_gap = float(np.quantile(tree.query(p, k=2)[0][:, 1], 0.9))
    spacing = max(float((hi - lo).max()) / resolution, sample_gap)
    lo = lo - 2 * spacing
    counts = np.ceil((hi - lo) / spacing).astype(int) + 3
    axes = [lo[i] + spacing * np.arange(counts[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    values = signed_distance(p, n, grid, k=k)
    # away from the samples, averaging planes of differently facing samples can flip the sign,
    # a point beside a flat face (in its plane, past its edge) has plane distance ~0, and near
    # thin parts the nearest sample may sit on the far side; there a point is inside only if it
    # lies behind each of its 8 nearest samples, within 60 deg of their inward normals
    dist, idx = tree.query(grid, k=8)
    far = dist[:, 0] > band * spacing
    to_point = grid[far, None] - p[idx[far]]
    cosine = np.einsum("qkd,qkd->qk", to_point, n[idx[far]]) / dist[far]
    inside = (cosine < -0.5).all(-1)
    values[far] = np.where(inside, -1.0, 1.0) * dist[far, 0]
    return extract_surface(values.reshape(*counts), lo, spacing, backend=backend)


def _poisson(p, n, resolution) -> Mesh:
    try:
        import open3d as o3d
    except ImportError:
        raise ImportError(
            "method='poisson' needs the optional package open3d (pip install open3d); "
            "method='hoppe' needs no extra"
        ) from None
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(p))
    cloud.normals = o3d.utility.Vector3dVector(n)
    depth = int(np.ceil(np.log2(resolution)))
    mesh, _ = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(cloud, depth=depth)
    faces = np.asarray(mesh.triangles).astype(np.int64)
    return Mesh(torch.from_numpy(np.asarray(mesh.vertices)), torch.from_numpy(faces))


def alpha_shape(points, radius: float = 0.12) -> Mesh:
    """The boundary of the union of the Delaunay tetrahedra of ``points (P, 3)`` whose
    circumsphere has a radius below ``radius``, oriented outward (each face away from the
    fourth vertex of its tetrahedron). Every edge is shared by an even number of faces (the
    boundary of a union of tetrahedra), though not always by two: thin necks are non-manifold.

    :raises ValueError: fewer than 4 points in general position, or no tetrahedron kept.
    """
    from scipy.spatial import Delaunay, QhullError

    p = torch.as_tensor(points).detach().cpu().double().numpy()
    if p.ndim != 2 or p.shape[-1] != 3 or len(p) < 4:
        raise ValueError(f"points must be (P >= 4, 3), got {p.shape}")
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius!r}")
    try:
        tets = Delaunay(p).simplices
    except QhullError as e:
        raise ValueError(f"the points span no volume ({e.__class__.__name__})") from None
    a, b, c, d = (p[tets[:, i]] for i in range(4))
    u, v, w = b - a, c - a, d - a
    det = np.einsum("ij,ij->i", u, np.cross(v, w))
    centre = (
        (u * u).sum(-1, keepdims=True) * np.cross(v, w)
        + (v * v).sum(-1, keepdims=True) * np.cross(w, u)
        + (w * w).sum(-1, keepdims=True) * np.cross(u, v)
    ) / (2 * np.where(np.abs(det) > 1e-15, det, np.inf))[:, None]
    kept = tets[(np.abs(det) > 1e-15) & (np.linalg.norm(centre, axis=-1) < radius)]
    if not len(kept):
        raise ValueError(f"no tetrahedron has a circumradius below {radius}; try a larger one")
    faces = np.concatenate([kept[:, [1, 2, 3]], kept[:, [0, 3, 2]], kept[:, [0, 1, 3]],
                            kept[:, [0, 2, 1]]])  # fmt: skip
    apex = np.concatenate([kept[:, 0], kept[:, 1], kept[:, 2], kept[:, 3]])
    key = np.sort(faces, axis=1)
    _, first, counts = np.unique(key, axis=0, return_index=True, return_counts=True)
    boundary = first[counts == 1]
    faces, apex = faces[boundary], apex[boundary]
    tri = p[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    inward = np.einsum("ij,ij->i", normal, p[apex] - tri[:, 0]) > 0
    faces[inward] = faces[inward][:, ::-1]
    used, faces = np.unique(faces, return_inverse=True)
    return Mesh(torch.from_numpy(p[used]), torch.from_numpy(faces.reshape(-1, 3).astype(np.int64)))


def deform_embedded(vertices, nodes, targets, *, k: int = 4, stiffness: float = 1e-3):
    r"""Embedded deformation (Sumner et al. 2007) with the graph's nodes at ``nodes (J, 3)``
    moved to ``targets (J, 3)``: the thesis's template deformation (§3.5, Fig. 3.12c).

    Node ``j`` carries an affine map :math:`A_j` fitted by least squares to its ``k`` nearest
    nodes' displacements, pulled towards the identity by ``stiffness`` (Sumner et al. solve all
    nodes jointly with rigidity and smoothness terms; here each node's is closed-form), and
    vertex :math:`v` moves to :math:`\sum_j w_j(v) [A_j (v - g_j) + t_j]` over its ``k``
    nearest nodes with Sumner's weights :math:`w_j \propto (1 - |v - g_j| / d_{max})^2`.

    :param vertices: ``(V, 3)``. :returns: ``(V, 3)`` deformed vertices (numpy float64).
    """
    from scipy.spatial import cKDTree

    g = np.asarray(nodes, dtype=float)
    t = np.asarray(targets, dtype=float)
    v = np.asarray(vertices, dtype=float)
    if g.shape != t.shape or g.ndim != 2 or g.shape[-1] != 3 or len(g) < 2:
        raise ValueError(f"nodes and targets must both be (J >= 2, 3), got {g.shape}, {t.shape}")
    k = min(k, len(g) - 1)
    tree = cKDTree(g)
    _, near = tree.query(g, k=k + 1)
    x = g[near[:, 1:]] - g[:, None]  # (J, k, 3) neighbours relative to the node
    y = t[near[:, 1:]] - t[:, None]
    eye = np.eye(3)
    # A_j = (Y^T X + s I)(X^T X + s I)^{-1}: least squares towards the identity
    lhs = np.einsum("jki,jkl->jil", x, x) + stiffness * eye
    rhs = np.einsum("jki,jkl->jli", x, y) + stiffness * eye
    affine = np.linalg.solve(lhs, rhs.transpose(0, 2, 1)).transpose(0, 2, 1)
    dist, idx = tree.query(v, k=k + 1)
    w = (1 - dist[:, :k] / dist[:, k:].clip(1e-12)) ** 2
    w = w / w.sum(-1, keepdims=True).clip(1e-12)
    local = np.einsum("vkij,vkj->vki", affine[idx[:, :k]], v[:, None] - g[idx[:, :k]])
    return (w[..., None] * (local + t[idx[:, :k]])).sum(1)


def template_surface(points, existence, database, *, k: int = 4) -> Mesh:
    """A mesh for one sampled shape (its ``points (P, 3)`` in a database's correspondence and
    ``existence (K,)``) from the database's part meshes: for each present part, the database
    shape whose part keypoints are nearest after centring (mean squared distance), its part mesh
    moved by :func:`deform_embedded` from its keypoints to the sample's. Parts meet as their
    templates do, so seams may show where parts intersect (thesis Fig. 3.12c).

    :param database: a procedural :class:`~pgm3d.data.ShapeSet` (it has part meshes).
    """
    if database.parts is None:
        raise ValueError("template_surface needs a procedural shape set (one with part meshes)")
    pts = torch.as_tensor(points).detach().cpu().double()
    e = torch.as_tensor(existence).cpu().bool()
    if pts.shape != (database.num_points, 3) or e.shape != (database.num_parts,):
        raise ValueError(
            f"points must be ({database.num_points}, 3) and existence ({database.num_parts},) "
            f"like the database's, got {tuple(pts.shape)} and {tuple(e.shape)}"
        )
    vertices, faces, part_of_face, offset = [], [], [], 0
    for j in e.nonzero().flatten().tolist():
        sl = database.part_slice(j)
        have = database.existence[:, j].cpu().nonzero().flatten()
        if not len(have):
            continue
        keys = database.points[have, sl].detach().cpu().double()
        target = pts[sl]
        gap = ((keys - keys.mean(1, keepdim=True)) - (target - target.mean(0))).pow(2).mean((1, 2))
        best = int(have[gap.argmin()])
        mv, mf = database.parts[j].mesh()
        template = mv[best].detach().cpu().double().numpy()
        moved = deform_embedded(template, keys[gap.argmin()], target, k=k)
        vertices.append(torch.from_numpy(moved))
        faces.append(mf.cpu() + offset)
        part_of_face.append(torch.full((len(mf),), j, dtype=torch.long))
        offset += len(moved)
    if not vertices:
        raise ValueError("the shape has no present part with a template")
    return Mesh(torch.cat(vertices), torch.cat(faces), torch.cat(part_of_face))
