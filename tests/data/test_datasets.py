"""open_data: names and paths to train/test splits."""

import numpy as np
import pytest
import torch

from pgm3d.data import open_data, shapes


def test_families_draw_train_and_test_with_consecutive_seeds():
    split = open_data("chairs", n_train=6, n_test=3, points_per_part=4, seed=2)
    assert split.is_shapes and len(split.train) == 6 and len(split.test) == 3
    torch.testing.assert_close(
        split.test.points, shapes("chairs", 3, seed=3, points_per_part=4).points
    )


def test_images_and_row_files_are_split_reproducibly(tmp_path):
    digits = open_data("digits", seed=0)
    assert digits.image_shape == (8, 8) and digits.train.shape == (1438, 64)
    rows = np.arange(40.0).reshape(10, 4)
    rows[0, 1] = np.nan  # missing entries travel as NaN
    np.save(tmp_path / "r.npy", rows)
    np.savetxt(tmp_path / "r.csv", rows, delimiter=",")
    np.savez(tmp_path / "r.npz", x=rows, other=rows[:2])
    splits = [open_data(tmp_path / f"r.{ext}", seed=1) for ext in ("npy", "csv", "npz")]
    for s in splits:
        assert s.train.shape == (8, 4) and s.test.shape == (2, 4) and not s.is_shapes
        torch.testing.assert_close(s.train, splits[0].train, equal_nan=True)
    assert torch.isnan(torch.cat([splits[0].train, splits[0].test])).sum() == 1


def test_a_saved_shape_set_is_read_back_as_shapes(tmp_path):
    shapes("lamps", 10, seed=0, points_per_part=4).save(tmp_path / "lamps.npz")
    split = open_data(tmp_path / "lamps.npz", test_fraction=0.3)
    assert split.is_shapes and (len(split.train), len(split.test)) == (7, 3)


@pytest.mark.parametrize(
    "spec, error, message",
    [
        ("sofas", ValueError, "unknown data 'sofas'; choose one of: airplanes, chairs"),
        ("missing.csv", FileNotFoundError, "does not exist"),
    ],
)
def test_bad_specs(spec, error, message):
    with pytest.raises(error, match=message):
        open_data(spec)


def test_bad_files(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        open_data(tmp_path / "folder")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="2-D numeric array"):
        open_data(tmp_path / "cube.npy")
    np.savez(tmp_path / "two.npz", a=np.zeros((4, 2)), b=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="name the data array 'x'"):
        open_data(tmp_path / "two.npz")
    (tmp_path / "bad.csv").write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="cannot read data rows"):
        open_data(tmp_path / "bad.csv")
