"""One entry point from a data *spec* (a name or a path) to a train/test split.

``open_data("chairs")`` draws procedural shapes; ``open_data("digits")`` loads images;
``open_data("my_shapes.npz")`` reads a saved :class:`~pgm3d.data.ShapeSet`; ``.npy``, ``.csv``
and other ``.npz`` files are read as data rows. The ``pgm3d`` command resolves ``--data`` here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pgm3d.data.images import DATASETS as IMAGE_DATASETS
from pgm3d.data.images import train_test_split
from pgm3d.data.shapes import FAMILIES, ShapeSet, load_shapes, shapes

__all__ = ["DataSplit", "data_names", "open_data"]

ROW_SUFFIXES = (".npy", ".npz", ".csv", ".txt")


@dataclass
class DataSplit:
    """Training and test data of one spec.

    :ivar str name: the spec it came from.
    :ivar train: a :class:`~pgm3d.data.ShapeSet`, or an ``(N, D)`` tensor of rows.
    :ivar test: the same kind as ``train``.
    :ivar image_shape: ``(H, W)`` when the rows are images, for figures.
    """

    name: str
    train: ShapeSet | torch.Tensor
    test: ShapeSet | torch.Tensor
    image_shape: tuple[int, int] | None = None

    @property
    def is_shapes(self) -> bool:
        return isinstance(self.train, ShapeSet)


def data_names() -> list[str]:
    """Names ``open_data`` knows besides paths: shape families, then image sets."""
    return FAMILIES.names() + IMAGE_DATASETS.names()


def _split_rows(x: torch.Tensor, test_fraction: float, seed: int):
    return train_test_split(x, test_fraction, generator=torch.Generator().manual_seed(seed))


def _read_rows(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                keys = list(f.keys())
                key = "x" if "x" in keys else keys[0] if len(keys) == 1 else None
                if key is None:
                    raise ValueError(f"{path} holds {keys}; name the data array 'x'")
                return f[key]
        return np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=2)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read data rows from {path}: {e}") from None


def open_data(
    spec: str | Path,
    *,
    n_train: int = 1000,
    n_test: int = 250,
    points_per_part: int = 32,
    test_fraction: float = 0.2,
    seed: int = 0,
    data_path: str | Path | None = None,
) -> DataSplit:
    """Resolve a data spec to a train/test split.

    :param spec: a shape family (``"chairs"``, ``"airplanes"``, ``"tables"``, ``"lamps"``: the
        training set is drawn with ``seed``, the test set with ``seed + 1``), an image set
        (``"digits"``, ``"frey"``), a shapes ``.npz`` written by :meth:`ShapeSet.save`, or a
        ``.npy`` / ``.npz`` / ``.csv`` / ``.txt`` file of ``(N, D)`` rows (NaN = missing).
    :param n_train: shapes to draw for training (families only).
    :param n_test: shapes to draw for testing (families only).
    :param points_per_part: points per part (families only).
    :param test_fraction: share of the rows held out (images and files; shuffled with ``seed``).
    :param data_path: the file of a named image set that needs one (``frey_rawface.mat``).
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
    path = Path(name)
    if path.suffix not in ROW_SUFFIXES and not path.exists():
        raise ValueError(
            f"unknown data {name!r}; choose one of: {', '.join(data_names())}, or a path to a "
            f"shapes .npz or a {'/'.join(ROW_SUFFIXES)} file of rows"
        )
    if not path.exists():
        raise FileNotFoundError(f"data file {path} does not exist")
    if path.is_dir():
        raise ValueError(
            f"{path} is a folder; the row and shape models take a shapes .npz or a file of rows "
            "(convert meshes with pgm3d.data.load_point_clouds or load_voxels first)"
        )
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            is_shapes = "part_of_point" in f
        if is_shapes:
            data = load_shapes(path)
            n = round(test_fraction * len(data))
            if not 0 < n < len(data):
                raise ValueError(f"cannot split {len(data)} shapes with {test_fraction=}")
            order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
            return DataSplit(name, data[order[n:]], data[order[:n]])
    if path.suffix not in ROW_SUFFIXES:
        raise ValueError(f"{path}: unsupported data file type; use one of {ROW_SUFFIXES}")
    rows = _read_rows(path)
    if rows.ndim != 2 or not np.issubdtype(rows.dtype, np.number):
        raise ValueError(f"{path}: expected a 2-D numeric array of rows, got {rows.shape}")
    x = torch.as_tensor(rows.astype(np.float64))
    train, test = _split_rows(x, test_fraction, seed)
    return DataSplit(name, train, test)
