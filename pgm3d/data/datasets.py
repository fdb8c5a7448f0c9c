"""One entry point from a data *spec* (a name or a path) to a train/test split.

``open_data("chairs")`` draws procedural shapes; ``open_data("digits")`` loads images;
``open_data("my_shapes.npz")`` reads a saved :class:`~pgm3d.data.ShapeSet`;
``open_data("voxel-classes")`` draws procedural voxel grids and a ModelNet-style folder or a
``.mat`` file is read as voxel grids (:class:`~pgm3d.data.VoxelSet`); ``.npy``, ``.csv`` and
other ``.npz`` files are read as data rows. The ``pgm3d`` command resolves ``--data`` here.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pgm3d.data.images import DATASETS as IMAGE_DATASETS
from pgm3d.data.images import train_test_split
from pgm3d.data.loaders import MESH_SUFFIXES, load_voxels
from pgm3d.data.rows import ROW_SUFFIXES, read_rows
from pgm3d.data.shapes import FAMILIES, ShapeSet, load_shapes, shapes
from pgm3d.data.sprites import SpriteScenes, multi_sprites
from pgm3d.data.views import ViewSet, render_views
from pgm3d.data.volumes import VOLUME_SETS
from pgm3d.data.voxels import VOXEL_SETS, VoxelSet, voxel_classes
from pgm3d.registry import did_you_mean
from pgm3d.settings import Settings, option

__all__ = [
    "DATA_KINDS",
    "DataSettings",
    "DataSplit",
    "data_kind",
    "data_names",
    "fit_resolution",
    "open_data",
    "open_voxels",
]

#: ``open_data("<voxel set>" + VIEWS_SUFFIX)`` renders the set's shapes (:mod:`pgm3d.data.views`)
VIEWS_SUFFIX = "-views"
#: the name of the procedural voxel set (:func:`~pgm3d.data.voxel_classes`)
VOXEL_SET = "voxel-classes"
#: procedural voxel sets by name: the set's classes (:data:`~pgm3d.data.voxels.VOXEL_SETS`)
VOXEL_SET_NAMES = {VOXEL_SET: "10", f"{VOXEL_SET}-40": "40"}
#: multi-sprite scene sets (:func:`~pgm3d.data.multi_sprites`) by name: their sprite slots
SPRITE_SETS = {"sprites-3": 3, "sprites-8": 8}

#: the kinds of data a model can take: what they are, and how to get them by name
DATA_KINDS = {
    "rows": ("rows of numbers", "digits, frey or a .npy/.npz/.csv/.txt file of rows"),
    "shapes": ("part-segmented shapes", "a shape family (e.g. chairs) or a shapes .npz"),
    "voxels": (
        "voxel grids",
        "voxel-classes, voxel-classes-40, primitives, mnist3d, necker-cube, a voxel file or a "
        "ModelNet-style folder",
    ),
    "scenes": ("multi-sprite scenes", "sprites-3 or sprites-8"),
    "views": (
        "shapes with rendered views",
        "a voxel set's name with -views, e.g. primitives-views",
    ),
}


def data_kind(data) -> str:
    """The kind of a dataset: ``"shapes"``, ``"voxels"``, ``"scenes"`` or ``"rows"``."""
    kinds = {ShapeSet: "shapes", VoxelSet: "voxels", SpriteScenes: "scenes", ViewSet: "views"}
    return next((k for t, k in kinds.items() if isinstance(data, t)), "rows")


@dataclass
class DataSplit:
    """Training and test data of one spec.

    :ivar str name: the spec it came from.
    :ivar train: a :class:`~pgm3d.data.ShapeSet`, a :class:`~pgm3d.data.VoxelSet`, a
        :class:`~pgm3d.data.SpriteScenes`, or an ``(N, D)`` tensor of rows.
    :ivar test: the same kind as ``train``.
    :ivar image_shape: ``(H, W)`` when the rows are images, for figures.
    :ivar columns: the column names of a text file with a header.
    :ivar empty_rows: 1-based rows of a file that have no observed entry (they cannot be
        trained on, and their likelihood is not scored).
    """

    name: str
    train: ShapeSet | VoxelSet | SpriteScenes | ViewSet | torch.Tensor
    test: ShapeSet | VoxelSet | SpriteScenes | ViewSet | torch.Tensor
    image_shape: tuple[int, int] | None = None
    columns: tuple[str, ...] | None = None
    empty_rows: tuple[int, ...] = ()

    @property
    def kind(self) -> str:
        """The kind of the data (a key of :data:`DATA_KINDS`), decided here once."""
        return data_kind(self.train)


def data_names() -> list[str]:
    """Names ``open_data`` knows besides paths: shape families, image sets, the voxel set and
    the sprite scenes."""
    voxels = [*VOXEL_SET_NAMES, *VOLUME_SETS]
    named = [*voxels, *(v + VIEWS_SUFFIX for v in voxels), *SPRITE_SETS]
    return FAMILIES.names() + IMAGE_DATASETS.names() + named


def fit_resolution(voxels: torch.Tensor, resolution: int) -> torch.Tensor:
    """Centre-pad or crop ``(N, r, r, r)`` grids to ``resolution³`` (e.g. 3D ShapeNets' 30³
    grids for a 32³ GAN)."""
    r, R = voxels.shape[-1], resolution
    if r == R:
        return voxels
    if r < R:
        lo = (R - r) // 2
        return torch.nn.functional.pad(voxels, (lo, R - r - lo) * 3)
    lo = (r - R) // 2
    return voxels[:, lo : lo + R, lo : lo + R, lo : lo + R]


def _is_voxel_file(path: Path) -> bool:
    if path.is_dir() or path.suffix == ".mat" or path.name.endswith(".npy.gz"):
        return True
    if path.suffix == ".npz":
        return "voxels" in _npz_keys(path)
    if path.suffix == ".npy":  # a grid (R, R, R) or a stack (N, R, R, R), not (N, D) rows
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False).ndim in (3, 4)
        except (OSError, ValueError, EOFError) as e:
            raise ValueError(f"cannot read {path}: {e}") from None
    return False


def _npz_keys(path: Path) -> list[str]:
    """The array names of an ``.npz`` file, with a message naming it if it is unreadable."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return list(f.keys())
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"cannot read {path}: {e}") from None


def open_voxels(
    spec: str | Path,
    *,
    resolution: int = 32,
    n_per_class: int = 100,
    test_fraction: float = 0.2,
    seed: int = 0,
    progress: bool | None = None,
) -> DataSplit:
    """Voxel grids at ``resolution³``, split into train and test.

    :param spec: ``"voxel-classes"`` or ``"voxel-classes-40"``
        (:func:`~pgm3d.data.voxel_classes` with 10 or 40 classes, ``n_per_class`` per class),
        Rezende et al.'s ``"primitives"`` (``n_per_class`` per class), ``"mnist3d"`` or
        ``"necker-cube"`` (``n_per_class`` volumes in all; :mod:`pgm3d.data.volumes`), a
        voxel file (``.mat``, ``.npy``, ``.npz``) or a ModelNet-style folder
        ``root/<class>/{train,test}/`` (:func:`~pgm3d.data.load_voxels`). Grids of another size
        are centre-padded or cropped; grids without a split are split at random
        (``test_fraction``, ``seed``).
    :returns: a :class:`DataSplit` of two :class:`~pgm3d.data.VoxelSet`.
    """
    name = str(spec)
    if name in VOXEL_SET_NAMES:
        data = voxel_classes(
            n_per_class, resolution, seed=seed, classes=VOXEL_SET_NAMES[name], progress=progress
        )
    elif name in VOLUME_SETS:
        make = VOLUME_SETS[name][0]
        data = make(n_per_class, resolution, seed, test_fraction=test_fraction)
    else:
        path = Path(name)
        if not path.exists():
            raise FileNotFoundError(
                f"no voxel data at {name!r}; give {VOXEL_SET!r} (procedural), a voxel file or a "
                "ModelNet-style folder root/<class>/{train,test}/"
            )
        # meshes are voxelised at ``resolution``; voxel files keep theirs, padded or cropped below
        meshes = path.is_dir() and any(f.suffix in MESH_SUFFIXES for f in path.rglob("*"))
        data = load_voxels(path, resolution=resolution if meshes else None, progress=progress)
    split = np.asarray(data.split)
    if not ((split == "train").any() and (split == "test").any()):
        split = np.full(len(data), "train")
        split[_held_out(len(data), test_fraction, seed, "voxel grids")[1].numpy()] = "test"
    grids = fit_resolution(data.voxels, resolution)
    parts = []
    for part in ("train", "test"):
        idx = torch.from_numpy(np.flatnonzero(split == part))
        parts.append(VoxelSet(grids[idx], data.labels[idx], data.class_names, split[idx.numpy()]))
    return DataSplit(name, *parts)


def _held_out(count: int, test_fraction: float, seed: int, what: str):
    """Indices ``(train, test)`` of ``count`` items shuffled with ``seed``, the first
    ``round(test_fraction * count)`` for testing (the order :func:`_split_rows` uses)."""
    n = round(test_fraction * count)
    if not 0 < n < count:
        raise ValueError(f"cannot split {count} {what} with {test_fraction=}")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[n:], order[:n]


def _split_rows(x: torch.Tensor, test_fraction: float, seed: int):
    return train_test_split(x, test_fraction, generator=torch.Generator().manual_seed(seed))


def open_data(
    spec: str | Path,
    *,
    n_train: int = 1000,
    n_test: int = 250,
    points_per_part: int = 32,
    test_fraction: float = 0.2,
    seed: int = 0,
    data_path: str | Path | None = None,
    resolution: int = 32,
) -> DataSplit:
    """Resolve a data spec to a train/test split.

    :param spec: a shape family (``"chairs"``, ``"airplanes"``, ``"tables"``, ``"lamps"``: the
        training set is drawn with ``seed``, the test set with ``seed + 1``), an image set
        (``"digits"``, ``"frey"``), a shapes ``.npz`` written by :meth:`ShapeSet.save`, or a
        ``.npy`` / ``.npz`` / ``.csv`` / ``.txt`` file of ``(N, D)`` rows (NaN = missing; see
        :mod:`pgm3d.data.rows` for what each file type may hold), or voxel
        grids (see :func:`open_voxels`): ``"voxel-classes"``, ``"primitives"``, ``"mnist3d"``,
        ``"necker-cube"``, a ``.mat`` file, an ``.npz`` with a
        ``voxels`` array, or a ModelNet-style folder.
    :param n_train: shapes to draw for training (families, ``"sprites-3"`` / ``"sprites-8"``
        multi-sprite scenes, and ``"voxel-classes"``, which draws
        ``ceil((n_train + n_test) / 10)`` grids per class; ``"primitives"``, ``"mnist3d"`` and
        ``"necker-cube"`` draw ``n_train + n_test`` volumes and hold ``n_test`` of them out).
    :param n_test: shapes to draw for testing (families only).
    :param points_per_part: points per part (families only).
    :param test_fraction: share of the rows held out (images and files; shuffled with ``seed``).
    :param data_path: the file of a named image set that needs one (``frey_rawface.mat``).
    :param int resolution: voxel grid size (voxel data only).
    :raises ValueError: an unknown name (the valid ones are listed) or an unreadable file.
    :raises FileNotFoundError: a path that does not exist.
    """
    name = str(spec)
    if name in FAMILIES:
        train = shapes(name, n_train, seed=seed, points_per_part=points_per_part)
        test = shapes(name, n_test, seed=seed + 1, points_per_part=points_per_part)
        return DataSplit(name, train, test)
    if name in IMAGE_DATASETS:
        kwargs = {"path": data_path} if data_path is not None and name == "frey" else {}
        images = IMAGE_DATASETS[name](**kwargs)
        train, test = _split_rows(images.x, test_fraction, seed)
        return DataSplit(name, train, test, images.image_shape)
    if name in SPRITE_SETS:  # fresh test scenes from the next seed, as for shape families
        train = multi_sprites(n_train, SPRITE_SETS[name], seed=seed)
        return DataSplit(name, train, multi_sprites(n_test, SPRITE_SETS[name], seed=seed + 1))
    if name in VOXEL_SET_NAMES:
        n_per_class = -(-(n_train + n_test) // len(VOXEL_SETS[VOXEL_SET_NAMES[name]]))
        return open_voxels(name, resolution=resolution, n_per_class=n_per_class, seed=seed)
    if name.endswith(VIEWS_SUFFIX) and name[: -len(VIEWS_SUFFIX)] in (
        *VOXEL_SET_NAMES,
        *VOLUME_SETS,
    ):
        grids = open_data(name[: -len(VIEWS_SUFFIX)], n_train=n_train, n_test=n_test,
                          seed=seed, resolution=resolution)  # fmt: skip
        return DataSplit(name, render_views(grids.train), render_views(grids.test))
    if name in VOLUME_SETS:
        count = -(-(n_train + n_test) // VOLUME_SETS[name][1])
        test_share = n_test / (n_train + n_test)
        return open_voxels(
            name, resolution=resolution, n_per_class=count, test_fraction=test_share, seed=seed
        )
    path = Path(name)
    if path.suffix not in ROW_SUFFIXES and not path.exists():
        raise ValueError(
            f"unknown data {name!r}{did_you_mean(name, data_names())}; choose one of: "
            f"{', '.join(data_names())}, or a path to a "
            f"shapes .npz or a {'/'.join(ROW_SUFFIXES)} file of rows"
        )
    if not path.exists():
        raise FileNotFoundError(f"data file {path} does not exist")
    if _is_voxel_file(path):
        return open_voxels(path, resolution=resolution, test_fraction=test_fraction, seed=seed)
    if path.suffix == ".npz":
        if "part_of_point" in _npz_keys(path):
            data = load_shapes(path)
            train, test = _held_out(len(data), test_fraction, seed, "shapes")
            return DataSplit(name, data[train], data[test])
    if path.suffix not in ROW_SUFFIXES:
        raise ValueError(f"{path}: unsupported data file type; use one of {ROW_SUFFIXES}")
    rows = read_rows(path)
    train, test = _split_rows(torch.as_tensor(rows.x), test_fraction, seed)
    return DataSplit(name, train, test, columns=rows.columns, empty_rows=rows.empty)


#: ``--data``'s help: what ``open_data`` takes
DATA_HELP = (
    f"{', '.join(data_names())}, a shapes .npz / .npy / .csv file, or a voxel file or "
    "ModelNet-style folder"
)


@dataclass
class DataSettings(Settings):
    """Where a command's data come from: the arguments of :func:`open_data`."""

    data: str = option("chairs", DATA_HELP)
    data_path: Path | None = option(None, "frey_rawface.mat location", kind=Path)
    n_train: int = option(1000, "shapes drawn for training")
    n_test: int = option(250, "shapes drawn for testing")
    points_per_part: int = option(16, "points per part of a drawn shape")
    test_fraction: float = option(0.2, "share of the rows held out for testing")
    resolution: int = option(32, "voxel grid size")

    def open(self, seed: int = 0) -> DataSplit:
        """The train/test split these settings name (:func:`open_data`)."""
        return open_data(
            self.data,
            n_train=self.n_train,
            n_test=self.n_test,
            points_per_part=self.points_per_part,
            test_fraction=self.test_fraction,
            seed=seed,
            data_path=self.data_path,
            resolution=self.resolution,
        )
