r"""The volume data sets of Rezende et al. 2016 (§A.6–A.9), generated and seeded here:
**Primitives** (sphere, cube, cylinder, cone and torus at random poses), **MNIST3D** (digits
extruded into slabs and turned at random) and the **Necker cube** (a wireframe cube at random
orientations, whose 2D views are the textbook ambiguous figure).

Each volume is solid occupancy of a ``R³`` grid over :math:`[-1, 1]^3`, indexed ``[i, j, k]``
along ``(x, y, z)`` with ``y`` up like pgm3d's other voxel data; a voxel is occupied when at
least half of its 2³ sub-voxel centres lie inside the shape (supersampling keeps thin parts —
the Necker cube's edges, a torus's ring — at 16³). Poses: a uniform random rotation (Primitives,
Necker cube) or a turn about ``y`` with a tilt of up to ±17° (MNIST3D, so a digit stays
readable from the front), a random size, and a shift of up to a tenth of the canvas.

MNIST3D extrudes scikit-learn's 8×8 digits (the only digits here; the paper used MNIST): pass
``images`` (e.g. MNIST read by :func:`~pgm3d.data.images.load_idx`) to extrude others.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from pgm3d.data.voxels import VoxelSet

__all__ = ["PRIMITIVES", "VOLUME_SETS", "mnist3d", "necker_cubes", "primitives"]

#: the classes of :func:`primitives`
PRIMITIVES = ("sphere", "cube", "cylinder", "cone", "torus")


def _check(n, resolution, test_fraction):
    for name, v in (("n", n), ("resolution", resolution)):
        if isinstance(v, bool) or not isinstance(v, int) or v < (2 if name == "resolution" else 1):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")


def _rotations(n: int, g: torch.Generator) -> torch.Tensor:
    """``(n, 3, 3)`` rotations uniform on SO(3) (normalised Gaussian quaternions)."""
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    w, x, y, z = (q / q.norm(dim=-1, keepdim=True)).unbind(-1)
    return torch.stack(
        [
            torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def _turns(n: int, g: torch.Generator, tilt: float) -> torch.Tensor:
    """Rotations about ``y`` by a uniform angle, then about ``x`` by up to ``tilt``."""
    a = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    b = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * tilt
    zero, one = torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64)

    def matrix(*rows):
        return torch.stack([torch.stack(row, -1) for row in rows], -2)

    ry = matrix((a.cos(), zero, a.sin()), (zero, one, zero), (-a.sin(), zero, a.cos()))
    rx = matrix((one, zero, zero), (zero, b.cos(), -b.sin()), (zero, b.sin(), b.cos()))
    return ry @ rx


def _sub_centres(resolution: int) -> torch.Tensor:
    """``(R³, 8, 3)`` centres of each voxel's 2³ sub-voxels in :math:`[-1, 1]^3`."""
    c = (torch.arange(2 * resolution, dtype=torch.float64) + 0.5) / resolution - 1
    grid = torch.stack(torch.meshgrid(c, c, c, indexing="ij"), -1)  # (2R, 2R, 2R, 3)
    R = resolution
    grid = grid.reshape(R, 2, R, 2, R, 2, 3).permute(0, 2, 4, 1, 3, 5, 6)
    return grid.reshape(R**3, 8, 3)


def _occupancy(inside, rotations, shifts, resolution, params, batch=32) -> torch.Tensor:
    """``(N, R, R, R)`` bool: at least 4 of each voxel's 8 sub-voxel centres inside.

    :param inside: ``inside(local, params_batch) -> bool`` for local coordinates ``(b, M, 3)``.
    """
    sub = _sub_centres(resolution).reshape(-1, 3)
    out = []
    for i in range(0, len(rotations), batch):
        rot, shift = rotations[i : i + batch], shifts[i : i + batch]
        local = (sub[None] - shift[:, None]) @ rot  # rot^T (p - t), row-vector form
        p = {k: v[i : i + batch] for k, v in params.items()}
        hits = inside(local, p).reshape(len(rot), resolution**3, 8).sum(-1) >= 4
        out.append(hits.reshape(-1, resolution, resolution, resolution))
    return torch.cat(out)


def _split(n: int, test_fraction: float, g: torch.Generator) -> np.ndarray:
    split = np.full(n, "train")
    n_test = round(test_fraction * n)
    split[torch.randperm(n, generator=g)[:n_test].numpy()] = "test"
    return split


def _primitive_inside(local, p):
    x, y, z = local.unbind(-1)
    rho, a = p["size"][:, None], p["aspect"][:, None]  # bounding radius, shape's aspect
    kind = p["kind"][:, None]
    radial = (x * x + z * z).sqrt()
    # the sphere fills its bounding ball; the others are sized to fit it
    sphere = local.norm(dim=-1) < rho
    cube = local.abs().amax(-1) < rho / math.sqrt(3)
    r_c, h_c = rho * torch.sin(a), rho * torch.cos(a)  # cylinder radius and half-height
    cylinder = (radial < r_c) & (y.abs() < h_c)
    cone = (y.abs() < h_c) & (radial < r_c * (h_c - y) / (2 * h_c))
    minor = rho * (0.2 + 0.2 * a / (math.pi / 2))
    torus = ((radial - (rho - minor)) ** 2 + y * y).sqrt() < minor
    shapes = torch.stack([sphere, cube, cylinder, cone, torus])  # (5, b, M)
    return shapes.gather(0, kind.expand_as(sphere)[None]).squeeze(0)


def primitives(
    n_per_class: int = 200,
    resolution: int = 16,
    seed: int = 0,
    *,
    classes=PRIMITIVES,
    test_fraction: float = 0.2,
) -> VoxelSet:
    """Rezende et al.'s Primitives: ``n_per_class`` solid sphere, cube, cylinder, cone and torus
    volumes, each at a uniform random rotation, a bounding radius in [0.55, 0.85] of the
    canvas's half-width, a random aspect (cylinders and cones from flat to tall, tori from thin
    to thick) and a shift of up to 0.1 per axis.

    :returns: a :class:`~pgm3d.data.VoxelSet` (labels index ``classes``).
    """
    _check(n_per_class, resolution, test_fraction)
    unknown = [c for c in classes if c not in PRIMITIVES]
    if unknown or not classes:
        raise ValueError(f"classes must be some of {PRIMITIVES}, got {tuple(classes)}")
    g = torch.Generator().manual_seed(seed)
    kinds = torch.tensor([PRIMITIVES.index(c) for c in classes]).repeat_interleave(n_per_class)
    n = len(kinds)
    params = {
        "kind": kinds,
        "size": 0.55 + 0.3 * torch.rand(n, generator=g, dtype=torch.float64),
        "aspect": (0.25 + 0.5 * torch.rand(n, generator=g, dtype=torch.float64)) * math.pi / 2,
    }
    rotations = _rotations(n, g)
    shifts = (torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1) * 0.1
    voxels = _occupancy(_primitive_inside, rotations, shifts, resolution, params)
    return VoxelSet(
        voxels=voxels,
        labels=torch.arange(len(classes)).repeat_interleave(n_per_class),
        class_names=tuple(classes),
        split=_split(n, test_fraction, g),
    )


def _digits_images() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.as_tensor(d.images / 16.0), torch.as_tensor(d.target)


def mnist3d(
    n: int = 1000,
    resolution: int = 16,
    seed: int = 0,
    *,
    images: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    depth: float = 0.3,
    test_fraction: float = 0.2,
) -> VoxelSet:
    """MNIST3D: ``n`` digits, each extruded into a slab ``depth`` thick (in canvas units, the
    canvas being 2 wide), its image spanning 1.4 of the canvas, turned about the up axis by a
    uniform angle and tilted by up to ±0.3 rad; a voxel is inside where the bilinearly
    interpolated image exceeds 1/2.

    :param images: ``(M, H, W)`` grey images in [0, 1] to draw from (default: scikit-learn's
        1,797 8×8 digits); ``labels`` their ``(M,)`` classes.
    """
    _check(n, resolution, test_fraction)
    if images is None:
        images, labels = _digits_images()
    images = torch.as_tensor(images, dtype=torch.float64)
    if images.dim() != 3 or labels is None or len(labels) != len(images):
        raise ValueError("images must be (M, H, W) with one label each")
    if not 0 < depth < 2:
        raise ValueError(f"depth must be in (0, 2), got {depth}")
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(images), (n,), generator=g)
    rotations = _turns(n, g, tilt=0.3)
    shifts = (torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1) * 0.1
    chosen = images[pick]

    def inside(local, p):
        # image row 0 at the top (+y), column 0 on the left (-x); the slab spans |z| < depth / 2
        grid = torch.stack([local[..., 0] / 0.7, -local[..., 1] / 0.7], -1)[:, :, None]
        ink = F.grid_sample(p["image"][:, None], grid, align_corners=False)[:, 0, :, 0]
        return (ink > 0.5) & (local[..., 2].abs() < depth / 2)

    voxels = _occupancy(inside, rotations, shifts, resolution, {"image": chosen})
    labels = torch.as_tensor(labels)[pick].long()
    return VoxelSet(
        voxels=voxels,
        labels=labels,
        class_names=tuple(str(i) for i in range(int(labels.max()) + 1)),
        split=_split(n, test_fraction, g),
    )


def necker_cubes(
    n: int = 500, resolution: int = 16, seed: int = 0, *, test_fraction: float = 0.2
) -> VoxelSet:
    """Wireframe cubes: the 12 edges of a cube of half-side ``a`` (its bounding radius uniform in
    [0.6, 0.85]), each a square bar 1.5 voxels thick, at a uniform random rotation."""
    _check(n, resolution, test_fraction)
    g = torch.Generator().manual_seed(seed)
    half = (0.6 + 0.25 * torch.rand(n, generator=g, dtype=torch.float64)) / math.sqrt(3)
    rotations = _rotations(n, g)
    shifts = (torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1) * 0.1
    width = 1.5 * 2 / resolution

    def inside(local, p):
        a = p["half"][:, None, None]
        q = local.abs()
        near = (q > a - width) & (q < a)
        return (q < a).all(-1) & (near.sum(-1) >= 2)

    voxels = _occupancy(inside, rotations, shifts, resolution, {"half": half})
    return VoxelSet(
        voxels=voxels,
        labels=torch.zeros(n, dtype=torch.long),
        class_names=("necker cube",),
        split=_split(n, test_fraction, g),
    )


#: procedural volume sets by ``open_data`` name: ``(generator, classes)``; the generator takes
#: ``(count, resolution, seed)`` with ``count`` per class for Primitives and in all otherwise
VOLUME_SETS = {
    "primitives": (primitives, len(PRIMITIVES)),
    "mnist3d": (mnist3d, 1),
    "necker-cube": (necker_cubes, 1),
}
