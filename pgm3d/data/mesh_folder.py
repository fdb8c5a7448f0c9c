"""A ModelNet-style folder of procedural furniture meshes: real files for the folder loader and
the classify experiment, made here so tests and benchmarks need no download.

ModelNet is a folder ``root/<class>/{train,test}/<name>.off`` of triangle meshes that the
loader voxelises (:func:`~pgm3d.data.loaders.load_voxels`). The procedural voxel set
(:func:`~pgm3d.data.voxel_classes`) skips that path: its grids are made directly and its
classes differ in gross shape. The meshes here go through the path real data take — an
``.off`` file per shape, parts as separate closed boxes (as many ModelNet meshes are unions of
parts), each shape with its own proportions, a random turn about the up axis and a random scale
and offset that voxelisation normalises away — and their classes differ in structure a model
has to learn (a chair's back, a table's wide top, a bed's headboard, a shelf's tiers).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["MESH_CLASSES", "furniture_mesh", "write_mesh_folder"]


def _box(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """A closed, outward-oriented box: 8 vertices, 12 triangles."""
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    v = np.array(
        [[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)], dtype=np.float64
    )
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    f = [(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads]
    return v, np.array(f)


def _legs(rng, w, d, h, t) -> list:
    """Four legs of thickness ``t`` and height ``h`` under a ``w × d`` footprint."""
    return [
        ((sx * (w / 2 - t) - t / 2, 0.0, sz * (d / 2 - t) - t / 2),
         (sx * (w / 2 - t) + t / 2, h, sz * (d / 2 - t) + t / 2))
        for sx in (-1, 1) for sz in (-1, 1)
    ]  # fmt: skip


def _chair(rng) -> list:
    w, d = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)
    h, t, s = rng.uniform(0.4, 0.5), rng.uniform(0.03, 0.06), rng.uniform(0.04, 0.08)
    back = rng.uniform(0.4, 0.7)
    parts = _legs(rng, w, d, h, t)
    parts.append(((-w / 2, h, -d / 2), (w / 2, h + s, d / 2)))  # seat
    parts.append(((-w / 2, h + s, -d / 2), (w / 2, h + s + back, -d / 2 + s)))  # back
    return parts


def _table(rng) -> list:
    w, d = rng.uniform(0.9, 1.6), rng.uniform(0.6, 1.0)
    h, t, s = rng.uniform(0.6, 0.8), rng.uniform(0.04, 0.08), rng.uniform(0.03, 0.06)
    return [*_legs(rng, w, d, h, t), ((-w / 2, h, -d / 2), (w / 2, h + s, d / 2))]


def _bed(rng) -> list:
    w, d = rng.uniform(0.9, 1.6), rng.uniform(1.8, 2.2)
    h, s, head = rng.uniform(0.15, 0.3), rng.uniform(0.2, 0.35), rng.uniform(0.4, 0.8)
    parts = [((-w / 2, h, -d / 2), (w / 2, h + s, d / 2))]  # mattress
    parts.append(((-w / 2, 0.0, -d / 2), (w / 2, h + s + head, -d / 2 + 0.08)))  # headboard
    parts += _legs(rng, w, d, h, 0.08)
    return parts


def _shelf(rng) -> list:
    w, d, h = rng.uniform(0.6, 1.2), rng.uniform(0.25, 0.4), rng.uniform(1.0, 2.0)
    t, tiers = 0.04, int(rng.integers(3, 6))
    parts = [((-w / 2, 0.0, -d / 2), (-w / 2 + t, h, d / 2)), ((w / 2 - t, 0.0, -d / 2),
             (w / 2, h, d / 2))]  # fmt: skip
    for k in range(tiers):
        y = k * (h - t) / (tiers - 1)
        parts.append(((-w / 2 + t, y, -d / 2), (w / 2 - t, y + t, d / 2)))
    return parts


#: the classes :func:`furniture_mesh` makes, each a function of a random generator to boxes
MESH_CLASSES = {"chair": _chair, "table": _table, "bed": _bed, "shelf": _shelf}


def furniture_mesh(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random mesh of class ``kind`` (a key of :data:`MESH_CLASSES`): its parts as closed
    boxes, turned by a uniform angle about the up (``y``) axis, scaled and shifted at random.

    :returns: ``(vertices (V, 3), faces (F, 3))``.
    """
    if kind not in MESH_CLASSES:
        raise ValueError(f"unknown mesh class {kind!r}; choose one of: {', '.join(MESH_CLASSES)}")
    verts, faces = [], []
    for lo, hi in MESH_CLASSES[kind](rng):
        v, f = _box(lo, hi)
        faces.append(f + sum(len(u) for u in verts))
        verts.append(v)
    v = np.concatenate(verts)
    a = rng.uniform(0, 2 * math.pi)
    turn = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    v = v @ turn.T * rng.uniform(0.5, 2.0) + rng.normal(size=3)
    return v, np.concatenate(faces)


def _write_off(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    lines = ["OFF", f"{len(vertices)} {len(faces)} 0"]
    lines += [" ".join(f"{c:.6f}" for c in p) for p in vertices]
    lines += ["3 " + " ".join(map(str, f)) for f in faces]
    path.write_text("\n".join(lines) + "\n")


def write_mesh_folder(
    root: str | Path,
    n_train: int,
    n_test: int,
    *,
    classes=("chair", "table"),
    seed: int = 0,
) -> Path:
    """Write ``n_train`` and ``n_test`` ``.off`` meshes per class into
    ``root/<class>/{train,test}/`` (ModelNet's layout); returns ``root``.

    :raises ValueError: an unknown class, or counts below 1.
    """
    if min(n_train, n_test) < 1:
        raise ValueError(f"n_train and n_test must be >= 1, got {n_train}, {n_test}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for kind in classes:
        for split, n in (("train", n_train), ("test", n_test)):
            folder = root / kind / split
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                _write_off(folder / f"{kind}_{i:04d}.off", *furniture_mesh(kind, rng))
    return root
