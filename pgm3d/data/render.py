r"""Images of voxel grids and triangle meshes at given cameras: silhouettes, depth and shaded
views, batched in torch (CPU or GPU).

Renderers tried here first, and why pgm3d has its own: pyrender and Open3D's
``OffscreenRenderer`` need an OpenGL context (EGL or OSMesa), which a headless machine without
a GPU does not have here; PyTorch3D has no CPU wheel for this torch. Open3D's
``RaycastingScene`` runs headless, but is an optional extra. So meshes are rendered by casting
one ray per pixel against every triangle (Möller–Trumbore, vectorised over pixels × faces,
exact for the camera model; tested against trimesh's ray casting) and voxel grids by
marching each ray through the grid's trilinear occupancy.

Conventions: world coordinates with ``y`` up; a voxel grid ``(R, R, R)`` indexed ``[i, j, k]``
along ``(x, y, z)`` fills the cube :math:`[-1, 1]^3` (voxel centres at :math:`(2i + 1)/R - 1`),
as pgm3d's voxel data. A :class:`Camera` looks at the origin from ``distance`` along the
direction of ``azimuth`` (about ``y``, from ``+z`` towards ``+x``) and ``elevation``; images are
``(H, W)`` with row 0 at the top. Orthographic cameras see the square :math:`[-s, s]^2` of the
image plane (``scale`` :math:`s`), perspective ones a field of view ``fov``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "KINDS",
    "Camera",
    "camera_rays",
    "first_hits",
    "render_meshes",
    "render_voxels",
    "sample_rays",
]

#: the images the renderers draw
KINDS = ("silhouette", "depth", "shaded")


@dataclass(frozen=True)
class Camera:
    """A camera looking at the origin.

    :ivar float azimuth: radians about ``y``; 0 looks from ``+z``.
    :ivar float elevation: radians above the ``x-z`` plane.
    :ivar float distance: from the origin.
    :ivar str projection: ``"orthographic"`` or ``"perspective"``.
    :ivar float scale: half-width of an orthographic view.
    :ivar float fov: full field of view of a perspective camera, radians.
    """

    azimuth: float = 0.0
    elevation: float = 0.0
    distance: float = 3.0
    projection: str = "orthographic"
    scale: float = 1.0
    fov: float = math.radians(40)

    def __post_init__(self):
        if self.projection not in ("orthographic", "perspective"):
            raise ValueError(
                f"projection must be 'orthographic' or 'perspective', got {self.projection!r}"
            )
        if not (self.distance > 0 and self.scale > 0 and 0 < self.fov < math.pi):
            raise ValueError("distance and scale must be > 0 and fov in (0, pi)")

    def basis(self, dtype=torch.float64, device=None) -> tuple[torch.Tensor, ...]:
        """``(position, forward, right, up)``, each ``(3,)``."""
        a, e = self.azimuth, self.elevation
        back = torch.tensor([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)],
                            dtype=dtype, device=device)  # fmt: skip
        forward = -back
        world_up = torch.tensor([0.0, 1.0, 0.0], dtype=dtype, device=device)
        right = torch.linalg.cross(forward, world_up)
        if right.norm() < 1e-9:  # looking straight up or down: any right will do
            right = torch.tensor([1.0, 0.0, 0.0], dtype=dtype, device=device)
        right = right / right.norm()
        up = torch.linalg.cross(right, forward)
        return self.distance * back, forward, right, up


def camera_rays(camera: Camera, size: int, *, dtype=torch.float64, device=None):
    """One ray per pixel: ``(origins, directions)``, each ``(size, size, 3)``, directions of
    unit length."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    pos, forward, right, up = camera.basis(dtype, device)
    c = (2 * torch.arange(size, dtype=dtype, device=device) + 1) / size - 1
    py, px = -c[:, None, None], c[None, :, None]  # row 0 at the top
    if camera.projection == "orthographic":
        s = camera.scale
        origins = pos + s * (px * right + py * up)
        return origins, forward.expand_as(origins)
    t = math.tan(camera.fov / 2)
    directions = forward + t * (px * right + py * up)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    return pos.expand_as(directions), directions


def sample_rays(volumes: torch.Tensor, camera: Camera, size: int, samples: int, *,
                mode: str = "trilinear"):  # fmt: skip
    """Occupancy sampled along each pixel's ray (zero outside the grid): the perspective
    transformer of Yan et al. 2016 (and its orthographic twin), differentiable in ``volumes``.

    :param volumes: ``(N, R, R, R)`` occupancies in [0, 1].
    :param mode: ``"trilinear"`` interpolation, or ``"nearest"`` (each voxel a solid cube).
    :returns: ``(occupancy (N, samples, size, size), depths (samples,))``, the samples ordered
        from the camera outwards.
    """
    if volumes.dim() != 4:
        raise ValueError(f"volumes must be (N, R, R, R), got {tuple(volumes.shape)}")
    v = volumes if volumes.is_floating_point() else volumes.float()
    origins, dirs = camera_rays(camera, size, dtype=v.dtype, device=v.device)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ValueError(f"samples must be an int >= 2, got {samples!r}")
    # every ray that meets the cube [-1, 1]^3 does so within sqrt(3) of the origin's depth
    near = max(camera.distance - math.sqrt(3), 0.0)
    t = torch.linspace(near, camera.distance + math.sqrt(3), samples, dtype=v.dtype,
                       device=v.device)  # fmt: skip
    points = origins[None] + t[:, None, None, None] * dirs[None]  # (S, H, W, 3) as (x, y, z)
    # grid_sample reads (x, y, z) = (W, H, D) of an input laid out (D, H, W): our (X, Y, Z)
    # tensor is (D, H, W) = (x, y, z), so the grid's coordinates are (z, y, x)
    grid = points.flip(-1).unsqueeze(0).expand(len(v), *points.shape)
    if mode not in ("trilinear", "nearest"):
        raise ValueError(f"mode must be 'trilinear' or 'nearest', got {mode!r}")
    occ = F.grid_sample(v.unsqueeze(1), grid, mode="bilinear" if mode == "trilinear" else mode,
                        padding_mode="zeros", align_corners=False)  # fmt: skip
    return occ[:, 0], t


def render_voxels(volumes, camera: Camera, size: int = 64, kind: str = "silhouette", *,
                  samples: int | None = None, threshold: float = 0.5,
                  mode: str = "nearest") -> torch.Tensor:  # fmt: skip
    """Images of voxel grids by ray marching.

    :param volumes: ``(N, R, R, R)`` occupancies (bool or in [0, 1]).
    :param mode: ``"nearest"``: each voxel a solid cube, as voxel viewers draw them (a binary
        grid's faces exactly); ``"trilinear"``: the interpolated occupancy field, smooth but
        with edges and corners rounded off by up to half a voxel.
    :param kind: ``"silhouette"`` (1 where a ray meets occupancy above ``threshold``),
        ``"depth"`` (distance to the first such sample, 0 where none) or ``"shaded"``
        (Lambertian under a light at the camera, the normal from the occupancy's gradient).
    :param samples: points per ray (default ``4 R``).
    :returns: ``(N, size, size)``.
    """
    _check_kind(kind)
    R = volumes.shape[-1]
    occ, t = sample_rays(volumes, camera, size, samples or 4 * R, mode=mode)
    hit = occ > threshold  # (N, S, H, W)
    seen = hit.any(1)
    if kind == "silhouette":
        return seen.to(occ.dtype)
    first = hit.to(torch.int8).argmax(1)  # the first sample above the threshold
    depth = torch.where(seen, t[first], torch.zeros_like(t[first]))
    if kind == "depth":
        return depth
    origins, dirs = camera_rays(camera, size, dtype=occ.dtype, device=occ.device)
    points = origins + depth[..., None] * dirs  # (N, H, W, 3)
    normals = _occupancy_normals(volumes.to(occ.dtype), points)
    light = (normals * -dirs).sum(-1).abs()
    return torch.where(seen, 0.2 + 0.8 * light, torch.zeros_like(light))


def _occupancy_normals(volumes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Outward normals: minus the gradient of the trilinear occupancy at ``points``, by central
    differences of half a voxel."""
    h = 1.0 / volumes.shape[-1]
    grads = []
    for axis in range(3):
        step = torch.zeros(3, dtype=points.dtype, device=points.device)
        step[axis] = h
        ahead = _occupancy_at(volumes, points + step)
        behind = _occupancy_at(volumes, points - step)
        grads.append(ahead - behind)
    n = -torch.stack(grads, -1)
    return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _occupancy_at(volumes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    grid = points.flip(-1).unsqueeze(1)  # (N, 1, H, W, 3)
    return F.grid_sample(volumes.unsqueeze(1), grid, align_corners=False)[:, 0, 0]


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def first_hits(vertices, faces, origins, dirs, chunk: int = 4096):
    """Distance along each ray to the nearest triangle (inf where none) and that triangle's
    index: Möller–Trumbore over rays × faces, ``chunk`` rays at a time.

    :param vertices: ``(V, 3)``, or ``(M, V, 3)`` for ``M`` meshes sharing ``faces (F, 3)``.
    :param origins, dirs: ``(P, 3)``.
    :returns: ``(t, face)``, each ``(P,)`` (or ``(M, P)``).
    """
    single = vertices.dim() == 2
    tri = (vertices[None] if single else vertices)[:, faces]  # (M, F, 3, 3)
    a, e1, e2 = tri[:, :, 0], tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0]
    eps = 1e-12
    best_t, best_f = [], []
    for o, d in zip(origins.split(chunk), dirs.split(chunk), strict=True):
        d4 = d[None, :, None].expand(len(tri), -1, e2.shape[1], -1)  # (M, P, F, 3)
        p = torch.linalg.cross(d4, e2[:, None].expand_as(d4))
        det = (e1[:, None] * p).sum(-1)
        ok = det.abs() >= eps
        inv = 1.0 / torch.where(ok, det, torch.ones_like(det))
        s = o[None, :, None] - a[:, None]
        u = (s * p).sum(-1) * inv
        q = torch.linalg.cross(s, e1[:, None].expand_as(s))
        v = (d4 * q).sum(-1) * inv
        t = (e2[:, None] * q).sum(-1) * inv
        ok = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-9)
        tmin, fmin = torch.where(ok, t, torch.full_like(t, math.inf)).min(-1)
        best_t.append(tmin)
        best_f.append(fmin)
    t, f = torch.cat(best_t, -1), torch.cat(best_f, -1)
    return (t[0], f[0]) if single else (t, f)


def render_meshes(meshes, camera: Camera, size: int = 64, kind: str = "silhouette",
                  *, dtype=torch.float64) -> torch.Tensor:  # fmt: skip
    """Images of triangle meshes by ray casting, one ray per pixel.

    :param meshes: a :class:`~pgm3d.data.mesh.Mesh` or a list of them.
    :param kind: ``"silhouette"``, ``"depth"`` (distance along the ray, 0 where none) or
        ``"shaded"`` (Lambertian under a light at the camera, two-sided faces).
    :returns: ``(N, size, size)``.
    """
    _check_kind(kind)
    meshes = [meshes] if not isinstance(meshes, list | tuple) else list(meshes)
    out = []
    for mesh in meshes:
        if mesh.is_empty:
            out.append(torch.zeros(size, size, dtype=dtype, device=mesh.vertices.device))
            continue
        v = mesh.vertices.to(dtype)
        origins, dirs = camera_rays(camera, size, dtype=dtype, device=v.device)
        t, face = first_hits(v, mesh.faces.to(v.device), origins.reshape(-1, 3),
                              dirs.reshape(-1, 3))  # fmt: skip
        seen = torch.isfinite(t)
        if kind == "silhouette":
            image = seen.to(dtype)
        elif kind == "depth":
            image = torch.where(seen, t, torch.zeros_like(t))
        else:
            tri = v[mesh.faces.to(v.device)]
            n = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            light = (n[face] * dirs.reshape(-1, 3)).sum(-1).abs()
            image = torch.where(seen, 0.2 + 0.8 * light, torch.zeros_like(light))
        out.append(image.reshape(size, size))
    return torch.stack(out)
