"""Image datasets for the missing-data experiments: 8x8 digits (embedded) and Frey faces (file).

Pixels are rescaled to ``[-1, 1]`` and images flattened row-major, so a dataset is a
``(N, H * W)`` tensor plus its image shape.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pgm3d.registry import Registry

__all__ = [
    "DATASETS",
    "FREY_FILENAME",
    "ImageDataset",
    "find_data_file",
    "load_dataset",
    "load_digits",
    "load_frey",
    "train_test_split",
]

FREY_FILENAME = "frey_rawface.mat"
DATASETS: Registry = Registry("dataset")


@dataclass
class ImageDataset:
    """A set of flattened images.

    :ivar torch.Tensor x: ``(N, H * W)`` pixels in ``[-1, 1]``.
    :ivar tuple image_shape: ``(H, W)``.
    :ivar str name: dataset name.
    :ivar labels: ``(N,)`` long class labels where the set has them (digits), else ``None``.
    """

    x: torch.Tensor
    image_shape: tuple[int, int]
    name: str
    labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.x.shape[0]


def _rescale(pixels: np.ndarray, max_value: float, dtype) -> torch.Tensor:
    return torch.as_tensor(pixels.astype(np.float64) * (2.0 / max_value) - 1.0, dtype=dtype)


@DATASETS.register("digits", image_shape=(8, 8))
def load_digits(*, dtype=torch.float64) -> ImageDataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, grey levels 0-16)."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    return ImageDataset(_rescale(bunch.data, 16.0, dtype), (8, 8), "digits", labels)


def find_data_file(filename: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Locate a data file: ``data_dir``, then ``$PGM3D_DATA_DIR``, then ``../shared/data`` beside
    the source checkout. Raises :class:`FileNotFoundError` listing where it looked."""
    here = Path(__file__).resolve()
    candidates = []
    if data_dir is not None:
        candidates.append(Path(data_dir))
    if os.environ.get("PGM3D_DATA_DIR"):
        candidates.append(Path(os.environ["PGM3D_DATA_DIR"]))
    candidates.append(here.parents[3] / "shared" / "data")
    for folder in candidates:
        if (folder / filename).is_file():
            return folder / filename
    raise FileNotFoundError(
        f"{filename} not found; looked in: {', '.join(str(c) for c in candidates)}. "
        "Pass path=... or set PGM3D_DATA_DIR."
    )


@DATASETS.register("frey", image_shape=(28, 20))
def load_frey(path: str | os.PathLike | None = None, *, dtype=torch.float64) -> ImageDataset:
    """Frey faces: 1,965 greyscale 28x20 images from ``frey_rawface.mat`` (key ``ff``,
    ``560 x 1965`` uint8, one image per column, row-major pixels).

    :param path: the ``.mat`` file; by default found with :func:`find_data_file`.
    """
    from scipy.io import loadmat

    path = Path(path) if path is not None else find_data_file(FREY_FILENAME)
    if not path.is_file():
        raise FileNotFoundError(f"Frey faces file {path} does not exist")
    try:
        contents = loadmat(path)
    except Exception as e:  # scipy raises several types for corrupt files
        raise ValueError(f"{path} is not a readable MATLAB .mat file: {e}") from e
    if "ff" not in contents:
        keys = sorted(k for k in contents if not k.startswith("__"))
        raise ValueError(f"{path} has no 'ff' array (keys: {keys})")
    ff = np.asarray(contents["ff"])
    if ff.ndim != 2 or ff.shape[0] != 28 * 20:
        raise ValueError(f"{path}: 'ff' must be 560 x N (28x20 images), got {ff.shape}")
    return ImageDataset(_rescale(ff.T, 255.0, dtype), (28, 20), "frey")


def load_dataset(name: str, **kwargs) -> ImageDataset:
    """Load a registered dataset by name (``"digits"``, ``"frey"``)."""
    return DATASETS[name](**kwargs)


def train_test_split(
    x: torch.Tensor, test_fraction: float = 0.2, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle the rows of ``x`` and split off ``round(test_fraction * N)`` for testing."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = round(test_fraction * x.shape[0])
    if not 0 < n_test < x.shape[0]:
        raise ValueError(f"cannot split {x.shape[0]} rows with test_fraction={test_fraction}")
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    return x[perm[n_test:]], x[perm[:n_test]]
