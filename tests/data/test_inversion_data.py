"""Affine digits (pgm3d's affNIST stand-in) and MNIST-format (IDX) files."""

import gzip

import numpy as np
import pytest
import torch

from pgm3d.data.images import load_affine_digits, load_digits, load_idx


def test_affine_digits_are_seeded_discrete_and_moved():
    a = load_affine_digits(seed=3)
    b = load_affine_digits(seed=3)
    assert torch.equal(a.x, b.x) and a.x.shape == (1797, 256) and a.image_shape == (16, 16)
    levels = ((a.x + 1) / 2 * 16).round()
    assert torch.allclose((a.x + 1) / 2 * 16, levels, atol=1e-9)  # 17 grey levels
    assert torch.equal(a.labels, load_digits().labels)
    # digits land in different places: the centre of mass spreads over the canvas
    w = (a.x + 1) / 2
    cols = torch.arange(16, dtype=w.dtype).repeat(16)
    centre = (w * cols).sum(1) / w.sum(1)
    assert float(centre.std()) > 1.0
    assert not torch.equal(load_affine_digits(seed=4).x, a.x)
    two = load_affine_digits(copies=2)
    assert two.x.shape == (2 * 1797, 256) and not torch.equal(two.x[:1797], two.x[1797:])
    with pytest.raises(ValueError, match="canvas"):
        load_affine_digits(canvas=6)


def _idx(array: np.ndarray, rank: int) -> bytes:
    head = bytes([0, 0, 0x08, rank]) + np.array(array.shape, dtype=">u4").tobytes()
    return head + array.astype(np.uint8).tobytes()


def test_idx_files_plain_or_gzipped_load_as_images_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2, 1, 0], dtype=np.uint8)
    (tmp_path / "x-ubyte").write_bytes(_idx(images, 3))
    (tmp_path / "y-ubyte.gz").write_bytes(gzip.compress(_idx(labels, 1)))
    d = load_idx(tmp_path / "x-ubyte", tmp_path / "y-ubyte.gz")
    assert d.image_shape == (4, 3) and d.labels.tolist() == labels.tolist()
    np.testing.assert_allclose(d.x.numpy(), images.reshape(5, 12) / 127.5 - 1.0)
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x03" + bytes(20))
    with pytest.raises(ValueError, match="not an IDX file"):
        load_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(_idx(images, 3)[:-4])
    with pytest.raises(ValueError, match="header says"):
        load_idx(tmp_path / "short")
    (tmp_path / "y3").write_bytes(_idx(labels[:3], 1))
    with pytest.raises(ValueError, match="3 labels for 5 images"):
        load_idx(tmp_path / "x-ubyte", tmp_path / "y3")
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "absent")
