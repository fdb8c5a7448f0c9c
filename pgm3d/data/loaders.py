"""Readers for real 3D data in the formats the source papers used.

* meshes (ModelNet's ``.off``, and ``.obj``/``.ply``/``.stl``) through trimesh: :func:`load_mesh`;
* voxel grids: 3D ShapeNets' ``.mat`` files (key ``instance``, 30^3, as used by VSL and 3D-GAN),
  ShapeNet's ``.binvox`` (read by trimesh), ``.npy``, ``.npy.gz`` and ``.npz`` arrays, and
  ModelNet-style folders
  ``root/<class>/[<any>/]{train,test}/<files>`` of ``.off``, ``.mat`` or ``.npy`` files:
  :func:`load_voxels`, written back by :func:`save_voxels`;
* point-correspondence sets: :func:`pgm3d.data.shapes.load_shapes`.
"""

from __future__ import annotations

import gzip
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pgm3d._progress import progress_bar
from pgm3d.data.mesh import Mesh
from pgm3d.data.voxels import VoxelSet, voxelize

__all__ = [
    "MESH_SUFFIXES",
    "VOXEL_SUFFIXES",
    "PointCloudSet",
    "load_mesh",
    "load_point_clouds",
    "load_voxels",
    "save_voxels",
]

MESH_SUFFIXES = (".off", ".obj", ".ply", ".stl")
VOXEL_SUFFIXES = (".mat", ".npy", ".npy.gz", ".npz", ".binvox")


class UnreadableFile(ValueError):
    """A file that cannot be parsed at all (truncated, corrupt, not the format its suffix
    says); a folder load may skip it (``on_error="skip"``). Files that read but hold the
    wrong content — another resolution, values that are not 0/1 — are errors."""


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".npy.gz" if name.endswith(".npy.gz") else path.suffix.lower()


def _off_header(path: Path) -> tuple[bool, int, int]:
    """Whether the header is split from the counts, and the declared vertex and face counts.

    ModelNet writes some headers as ``OFF490 518 0`` (no line break after ``OFF``).
    """
    tokens: list[str] = []
    with open(path, errors="replace") as f:
        for line in f:
            tokens += line.split("#", 1)[0].split()
            if len(tokens) >= 4:
                break
    if not tokens or not tokens[0].upper().startswith("OFF"):
        raise UnreadableFile(f"{path}: not an OFF file (no 'OFF' header)")
    split = tokens[0].upper() == "OFF"
    counts = tokens[1:3] if split else [tokens[0][3:], *tokens[1:2]]
    try:
        return split, int(counts[0]), int(counts[1])
    except (IndexError, ValueError):
        raise UnreadableFile(f"{path}: malformed OFF header {' '.join(tokens[:4])!r}") from None


def load_mesh(path: str | os.PathLike, *, dtype=torch.float64) -> Mesh:
    """Read a triangle mesh (``.off``, ``.obj``, ``.ply``, ``.stl``) with trimesh, unprocessed
    (vertex order kept). Polygons are triangulated by trimesh.

    :raises FileNotFoundError: no such file.
    :raises ValueError: an unknown suffix, a corrupt or truncated file (for OFF, fewer vertices
        or faces than the header declares) or an empty mesh; the message names the file.
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no mesh file at {path}")
    suffix = _suffix(path)
    if suffix not in MESH_SUFFIXES:
        raise ValueError(f"{path}: unknown mesh format {suffix!r}; expected one of {MESH_SUFFIXES}")
    header = _off_header(path) if suffix == ".off" else None
    try:
        if header is not None and not header[0]:
            text = path.read_text(errors="replace").lstrip()
            tm = trimesh.load(
                trimesh.util.wrap_as_stream("OFF\n" + text[3:]),
                file_type="off",
                process=False,
                force="mesh",
            )
        else:
            tm = trimesh.load(path, process=False, force="mesh")
            if suffix == ".stl":  # STL stores every triangle's corners separately
                tm.merge_vertices()
    except Exception as e:  # trimesh raises many types on malformed input
        raise UnreadableFile(f"{path}: could not read mesh ({type(e).__name__}: {e})") from e
    if not hasattr(tm, "faces") or len(tm.faces) == 0 or len(tm.vertices) == 0:
        raise UnreadableFile(f"{path}: empty mesh (no faces)")
    if header is not None:
        _, n_vertices, n_faces = header
        if len(tm.vertices) < n_vertices or len(tm.faces) < n_faces:
            raise UnreadableFile(
                f"{path}: truncated or corrupt OFF file: header declares {n_vertices} vertices and "
                f"{n_faces} faces, read {len(tm.vertices)} and {len(tm.faces)}"
            )
    return Mesh.from_trimesh(tm, source=str(path), dtype=dtype)


def _binary(array: np.ndarray, source) -> torch.Tensor:
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{source}: voxel array has non-numeric dtype {array.dtype}")
    if not np.isin(array, (0, 1)).all():
        bad = np.unique(array[~np.isin(array, (0, 1))])[:5]
        raise ValueError(
            f"{source}: voxel values must be 0/1 occupancies, found {bad.tolist()}; threshold "
            "probabilities or distance fields first (e.g. array > 0.5)"
        )
    return torch.from_numpy(array.astype(bool))


def _grids(array: np.ndarray, source) -> torch.Tensor:
    """``(N, R, R, R)`` bool from a ``(R, R, R)`` or ``(N, R, R, R)`` array."""
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or len(set(array.shape[1:])) != 1:
        raise ValueError(
            f"{source}: voxels must have shape (R, R, R) or (N, R, R, R), got {array.shape}"
        )
    return _binary(array, source)


def _read_voxel_file(path: Path, key: str) -> tuple[torch.Tensor, dict]:
    """Grids and any metadata arrays (npz: labels, class_names, split) from one file."""
    suffix = _suffix(path)
    try:
        if suffix == ".mat":
            from scipy.io import loadmat

            arrays = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
        elif suffix == ".npy":
            arrays = {key: np.load(path, allow_pickle=False)}
        elif suffix == ".npy.gz":
            with gzip.open(path, "rb") as f:
                arrays = {key: np.load(f, allow_pickle=False)}
        elif suffix == ".binvox":  # ShapeNet's and 3D-R2N2's grids, through trimesh's reader
            from trimesh.exchange.binvox import load_binvox

            with open(path, "rb") as f:
                arrays = {key: np.asarray(load_binvox(f).matrix, dtype=np.uint8)}
        else:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
    except Exception as e:  # numpy, scipy and gzip raise many types on malformed files
        raise UnreadableFile(f"{path}: could not read voxel file ({type(e).__name__}: {e})") from e
    if suffix != ".npz":
        if key not in arrays:
            raise ValueError(f"{path}: no key {key!r} in .mat file (found {list(arrays)})")
        return _grids(arrays[key], path), {}
    name = "voxels" if "voxels" in arrays else (next(iter(arrays)) if len(arrays) == 1 else None)
    if name is None:
        raise ValueError(f"{path}: .npz needs a 'voxels' array (found {list(arrays)})")
    return _grids(arrays.pop(name), path), arrays


def load_voxels(
    path: str | os.PathLike,
    *,
    resolution: int | None = None,
    key: str = "instance",
    solid: bool = True,
    progress: bool | None = None,
    on_error: str = "skip",
) -> VoxelSet:
    """Read voxel grids from a file or a ModelNet-style folder.

    * ``.mat`` (3D ShapeNets; array under ``key``), ``.npy``, ``.npy.gz``: one ``(R, R, R)`` grid or
      a stack ``(N, R, R, R)``; ``.binvox`` (ShapeNet, 3D-R2N2; trimesh's reader): one grid;
    * ``.npz``: ``voxels`` (or its only array), optionally ``labels``, ``class_names`` and ``split``
      as written by :func:`save_voxels`;
    * a folder ``root/<class>/[...]/{train,test}/<files>`` (ModelNet, or 3D ShapeNets'
      ``root/<class>/30/{train,test}``) of voxel files or meshes (``.off`` etc., voxelised solid at
      ``resolution``, default 32, with :func:`~pgm3d.data.voxels.voxelize`). Classes are the
      sorted sub-folder names.

    :param int resolution: grid size for meshes; for voxel files, the size they must have.
    :param bool solid: for meshes, fill the interior (non-watertight meshes raise; pass False for
        surface voxels).
    :param str on_error: in a folder, what an unreadable file (:class:`UnreadableFile`) does:
        ``"skip"`` it, with one
        warning that names every skipped file and why (a download with one broken file of
        thousands still loads), or ``"raise"``. A folder in which no file reads is an error.
    :returns: a :class:`~pgm3d.data.voxels.VoxelSet` (``split`` is ``""`` when a file has none).
    :raises ValueError: wrong rank or non-binary values, mixed resolutions, a folder without
        ``train``/``test`` files, unreadable files -- naming the file.
    """
    path = Path(path)
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    if path.is_dir():
        return _load_folder(path, resolution, key, solid, progress, on_error)
    if not path.is_file():
        raise FileNotFoundError(f"no voxel file or folder at {path}")
    suffix = _suffix(path)
    if suffix in MESH_SUFFIXES:
        R = resolution or 32
        grids, meta = voxelize(load_mesh(path), R, padding=R // 10, solid=solid)[None], {}
    elif suffix in VOXEL_SUFFIXES:
        grids, meta = _read_voxel_file(path, key)
    else:
        raise ValueError(
            f"{path}: unknown format {suffix!r}; expected {VOXEL_SUFFIXES + MESH_SUFFIXES}"
        )
    if resolution is not None and grids.shape[-1] != resolution:
        raise ValueError(f"{path}: resolution {grids.shape[-1]}, expected {resolution}")
    n = len(grids)
    labels = torch.as_tensor(meta.get("labels", np.zeros(n, dtype=np.int64))).long()
    class_names = tuple(str(c) for c in meta.get("class_names", (path.name.split(".")[0],)))
    split = np.asarray(meta.get("split", np.full(n, "")), dtype=str)
    if len(labels) != n or len(split) != n:
        raise ValueError(f"{path}: 'labels' and 'split' must have one entry per grid ({n})")
    if n and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"{path}: labels out of range for {len(class_names)} class names")
    return VoxelSet(grids, labels, class_names, split, sources=[str(path)] * n)


def _scan(root: Path, suffixes) -> tuple[list[str], list[tuple[Path, int, str]]]:
    """Classes and ``(file, label, split)`` of a folder ``root/<class>/[...]/{train,test}/``."""
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    files = []
    for label, name in enumerate(classes):
        for f in sorted((root / name).rglob("*")):
            if f.is_file() and _suffix(f) in suffixes and f.parent.name in ("train", "test"):
                files.append((f, label, f.parent.name))
    if not files:
        raise ValueError(
            f"{root}: no files in the ModelNet layout root/<class>/[...]/{{train,test}}/<file> "
            f"with suffixes {suffixes}"
        )
    return classes, files


def _load_folder(root: Path, resolution, key, solid, progress, on_error) -> VoxelSet:
    classes, files = _scan(root, VOXEL_SUFFIXES + MESH_SUFFIXES)
    grids, labels, split, sources, skipped = [], [], [], [], []
    for f, label, part in progress_bar(files, desc=f"loading {root.name}", progress=progress):
        try:
            one = load_voxels(f, resolution=resolution, key=key, solid=solid)
        except UnreadableFile as e:
            if on_error == "raise":
                raise
            skipped.append(str(e))
            continue
        if grids and one.resolution != grids[0].shape[-1]:
            raise ValueError(
                f"{f}: resolution {one.resolution} differs from {grids[0].shape[-1]} "
                "of earlier files; pass resolution= to check or convert meshes"
            )
        grids.append(one.voxels)
        labels += [label] * len(one)
        split += [part] * len(one)
        sources += [str(f)] * len(one)
    if skipped:
        shown = "\n  ".join(skipped[:20]) + ("\n  ..." if len(skipped) > 20 else "")
        if not grids:
            raise ValueError(f"{root}: no file could be read:\n  {shown}")
        warnings.warn(
            f"{root}: skipped {len(skipped)} of {len(files)} unreadable files:\n  {shown}",
            stacklevel=3,
        )
    return VoxelSet(
        torch.cat(grids), torch.tensor(labels), tuple(classes), np.array(split), sources=sources
    )


def save_voxels(path: str | os.PathLike, voxels) -> str:
    """Write grids as ``.npz`` (with labels, class names and split when given a
    :class:`~pgm3d.data.voxels.VoxelSet`), ``.npy``, ``.npy.gz`` or ``.mat`` (one grid under
    ``instance``, as 3D ShapeNets).

    :param voxels: a VoxelSet, or a bool/0-1 tensor or array ``(R, R, R)`` / ``(N, R, R, R)``.
    """
    path = Path(path)
    meta = {}
    if isinstance(voxels, VoxelSet):
        meta = {
            "labels": voxels.labels.cpu().numpy(),
            "class_names": np.array(voxels.class_names),
            "split": voxels.split.astype(str),
        }
        voxels = voxels.voxels
    array = _grids(torch.as_tensor(voxels).cpu().numpy(), "voxels").numpy().astype(np.uint8)
    suffix = _suffix(path)
    if suffix == ".npz":
        np.savez_compressed(path, voxels=array, **meta)
    elif suffix == ".npy":
        np.save(path, array)
    elif suffix == ".npy.gz":
        with gzip.open(path, "wb") as f:
            np.save(f, array)
    elif suffix == ".mat":
        if len(array) != 1:
            raise ValueError(
                f"{path}: a .mat file holds one grid (3D ShapeNets layout), got {len(array)}"
            )
        from scipy.io import savemat

        savemat(path, {"instance": array[0]})
    else:
        raise ValueError(
            f"{path}: unknown voxel format {suffix!r}; expected one of {VOXEL_SUFFIXES}"
        )
    return str(path)


@dataclass
class PointCloudSet:
    """Point clouds sampled from meshes.

    :ivar torch.Tensor points: ``(N, P, 3)``. :ivar torch.Tensor normals: ``(N, P, 3)``.
    :ivar torch.Tensor labels: ``(N,)``. :ivar tuple class_names: class of each label.
    :ivar numpy.ndarray split: ``(N,)`` ``"train"``/``"test"``. :ivar list sources: mesh files.
    """

    points: torch.Tensor
    normals: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    split: np.ndarray
    sources: list[str]

    def __len__(self) -> int:
        return self.points.shape[0]


def load_point_clouds(
    root: str | os.PathLike,
    num_points: int = 2048,
    *,
    seed: int = 0,
    normalize: bool = True,
    progress: bool | None = None,
) -> PointCloudSet:
    """Sample ``num_points`` surface points (area-weighted, with face normals) from every mesh of a
    ModelNet-style folder ``root/<class>/[...]/{train,test}/*.off`` (or ``.obj``/``.ply``/``.stl``).

    :param bool normalize: centre each cloud on its bounding box and scale it into the unit ball,
        as is usual for ModelNet point clouds.
    :param int seed: the sampling seed of file ``i`` is ``seed + i``, so loads are reproducible.
    """
    from pgm3d.data.shapes import _positive

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no folder at {root}")
    num_points = _positive(num_points, "num_points")
    classes, files = _scan(root, MESH_SUFFIXES)
    points, normals = [], []
    for i, (f, _, _) in enumerate(
        progress_bar(files, desc=f"sampling {root.name}", progress=progress)
    ):
        p, n = load_mesh(f).sample_points(num_points, seed=seed + i)
        if normalize:
            p = p - (p.amax(0) + p.amin(0)) / 2
            p = p / p.norm(dim=-1).amax().clamp_min(1e-12)
        points.append(p)
        normals.append(n)
    return PointCloudSet(
        points=torch.stack(points).to(torch.get_default_dtype()),
        normals=torch.stack(normals).to(torch.get_default_dtype()),
        labels=torch.tensor([label for _, label, _ in files]),
        class_names=tuple(classes),
        split=np.array([split for _, _, split in files]),
        sources=[str(f) for f, _, _ in files],
    )
