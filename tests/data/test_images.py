import numpy as np
import pytest
import torch
from scipy.io import savemat

from pgm3d.data.images import (
    DATASETS,
    find_data_file,
    load_dataset,
    load_digits,
    load_frey,
    train_test_split,
)

try:
    REAL_FREY = find_data_file("frey_rawface.mat")
except FileNotFoundError:
    REAL_FREY = None


def test_digits_are_rescaled_8x8_images():
    data = load_digits()
    assert data.x.shape == (1797, 64) and data.image_shape == (8, 8)
    assert data.x.min() == -1.0 and data.x.max() == 1.0
    assert data.x.dtype == torch.float64


def test_frey_loader_reads_a_small_mat_file(tmp_path):
    ff = np.random.default_rng(0).integers(0, 256, size=(560, 5), dtype=np.uint8)
    ff[0, 0], ff[1, 0] = 0, 255
    path = tmp_path / "tiny.mat"
    savemat(path, {"ff": ff})
    data = load_frey(path, dtype=torch.float32)
    assert data.x.shape == (5, 560) and data.image_shape == (28, 20)
    assert data.x.dtype == torch.float32
    assert data.x[0, 0] == -1.0 and data.x[0, 1] == 1.0
    # column j of ff is image j, pixels row-major
    np.testing.assert_allclose(data.x[3].numpy(), ff[:, 3] / 127.5 - 1, rtol=1e-6)


def test_frey_loader_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.mat"
    with pytest.raises(FileNotFoundError, match="missing.mat"):
        load_frey(missing)
    corrupt = tmp_path / "corrupt.mat"
    corrupt.write_bytes(b"\x00not a mat file" * 10)
    with pytest.raises(ValueError, match="corrupt.mat"):
        load_frey(corrupt)
    nokey = tmp_path / "nokey.mat"
    savemat(nokey, {"faces": np.zeros((560, 2), dtype=np.uint8)})
    with pytest.raises(ValueError, match=r"no 'ff'.*faces"):
        load_frey(nokey)
    wrong = tmp_path / "wrong.mat"
    savemat(wrong, {"ff": np.zeros((100, 2), dtype=np.uint8)})
    with pytest.raises(ValueError, match="560 x N"):
        load_frey(wrong)


def test_find_data_file_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("PGM3D_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        find_data_file("nothing-here.mat")
    (tmp_path / "here.mat").write_bytes(b"")
    assert find_data_file("here.mat") == tmp_path / "here.mat"


@pytest.mark.skipif(REAL_FREY is None, reason="frey_rawface.mat is not available")
def test_real_frey_faces():
    data = load_dataset("frey")
    assert data.x.shape == (1965, 560)
    assert -1.0 <= data.x.min() < -0.9 and 0.8 < data.x.max() <= 1.0


def test_registry_and_split():
    assert set(DATASETS.names()) == {"digits", "frey", "affine-digits"}
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*digits"):
        load_dataset("mnist")
    x = torch.arange(50.0)[:, None].expand(50, 3)
    tr, te = train_test_split(x, 0.2, generator=torch.Generator().manual_seed(0))
    assert tr.shape == (40, 3) and te.shape == (10, 3)
    assert set(tr[:, 0].tolist()).isdisjoint(te[:, 0].tolist())
    tr2, _ = train_test_split(x, 0.2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(tr, tr2)
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(x, 1.0)
