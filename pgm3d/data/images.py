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
    "load_affine_digits",
    "load_dataset",
    "load_digits",
    "load_frey",
    "load_idx",
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


@DATASETS.register("affine-digits", image_shape=(16, 16))
def load_affine_digits(
    *, canvas: int = 16, copies: int = 1, seed: int = 0, levels: int = 17, dtype=torch.float64
) -> ImageDataset:
    """Digits under random affine transforms on a larger canvas: pgm3d's stand-in for affNIST
    (thesis §6.5.1's architecture comparison), generated and seeded like its other data.

    Each of the 1,797 8x8 digits (``copies`` times, each copy its own transform) is centred on
    a ``canvas x canvas`` image and moved by a random affine map — rotation within ±20°, scale
    0.8–1.2, shear within ±0.2, translation within ±``canvas/4`` pixels — resampled bilinearly
    (``grid_sample``) and rounded to ``levels`` grey levels, so the images stay discrete.

    :returns: an :class:`ImageDataset` ``(copies * 1797, canvas**2)`` in ``[-1, 1]``, labels
        kept.
    """
    import math

    from torch.nn import functional as F

    if canvas < 8:
        raise ValueError(f"canvas must be >= 8 (the digits are 8x8), got {canvas}")
    if copies < 1 or levels < 2:
        raise ValueError(f"copies must be >= 1 and levels >= 2, got {copies}, {levels}")
    digits = load_digits(dtype=torch.float64)
    n = len(digits) * copies
    g = torch.Generator().manual_seed(seed)
    small = ((digits.x + 1) / 2).reshape(-1, 1, 8, 8).repeat(copies, 1, 1, 1)
    pad = (canvas - 8) // 2
    big = F.pad(small, (pad, canvas - 8 - pad, pad, canvas - 8 - pad))
    u = torch.rand(n, 5, generator=g, dtype=torch.float64)
    angle = (u[:, 0] * 2 - 1) * math.radians(20)
    scale = 0.8 + 0.4 * u[:, 1]
    shear = (u[:, 2] * 2 - 1) * 0.2
    shift = (u[:, 3:] * 2 - 1) * 0.5  # a quarter of the canvas, in grid units (width 2)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # output -> input sampling map: the inverse of rotate(scale(shear(.))) + shift
    fwd = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    fwd = fwd @ torch.stack([torch.stack([scale, scale * shear], -1),
                             torch.stack([torch.zeros_like(scale), scale], -1)], -2)  # fmt: skip
    inv = torch.linalg.inv(fwd)
    theta = torch.cat([inv, -(inv @ shift[:, :, None])], -1)
    grid = F.affine_grid(theta, (n, 1, canvas, canvas), align_corners=False)
    moved = F.grid_sample(big, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    q = (moved.clamp(0, 1) * (levels - 1)).round() / (levels - 1)
    x = (2 * q - 1).reshape(n, -1).to(dtype)
    return ImageDataset(x, (canvas, canvas), "affine-digits", digits.labels.repeat(copies))


def load_idx(images: str | os.PathLike, labels: str | os.PathLike | None = None, *,
             dtype=torch.float64) -> ImageDataset:  # fmt: skip
    """Images (and labels) in the IDX format of MNIST and affNIST (``*-ubyte``, gzipped or
    not): unsigned bytes, ``(N, H, W)`` images rescaled to ``[-1, 1]``, 256 grey levels.

    :raises ValueError: a file that is not IDX unsigned bytes of the right rank, or labels
        whose count differs from the images'.
    """
    x = _read_idx(images, rank=3)
    y = None
    if labels is not None:
        y = torch.as_tensor(_read_idx(labels, rank=1).astype(np.int64))
        if len(y) != len(x):
            raise ValueError(f"{labels}: {len(y)} labels for {len(x)} images")
    n, h, w = x.shape
    return ImageDataset(_rescale(x.reshape(n, h * w), 255.0, dtype), (h, w), Path(images).name, y)


def _read_idx(path, rank: int) -> np.ndarray:
    import gzip

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08 or raw[3] != rank:
        raise ValueError(
            f"{path} is not an IDX file of unsigned bytes with {rank} dimension(s) (MNIST's "
            "format: magic 0x0000080{rank})"
        )
    dims = np.frombuffer(raw[4 : 4 + 4 * rank], dtype=">u4").astype(int)
    data = np.frombuffer(raw[4 + 4 * rank :], dtype=np.uint8)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {tuple(dims)} but holds {data.size} bytes")
    return data.reshape(dims)


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
