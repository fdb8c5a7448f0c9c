"""open_data: names and paths to train/test splits."""

import numpy as np
import pytest
import torch

from pgm3d.data import (
    VOXEL_CLASSES,
    multi_sprites,
    open_data,
    save_voxels,
    shapes,
    voxel_classes,
)
from pgm3d.data.datasets import fit_resolution, open_voxels


def test_families_draw_train_and_test_with_consecutive_seeds():
    split = open_data("chairs", n_train=6, n_test=3, points_per_part=4, seed=2)
    assert (split.kind == "shapes") and len(split.train) == 6 and len(split.test) == 3
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
        assert s.train.shape == (8, 4) and s.test.shape == (2, 4) and not (s.kind == "shapes")
        torch.testing.assert_close(s.train, splits[0].train, equal_nan=True)
    assert torch.isnan(torch.cat([splits[0].train, splits[0].test])).sum() == 1


def test_a_saved_shape_set_is_read_back_as_shapes(tmp_path):
    shapes("lamps", 10, seed=0, points_per_part=4).save(tmp_path / "lamps.npz")
    split = open_data(tmp_path / "lamps.npz", test_fraction=0.3)
    assert (split.kind == "shapes") and (len(split.train), len(split.test)) == (7, 3)


@pytest.mark.parametrize(
    "spec, error, message",
    [
        ("sofas", ValueError, "unknown data 'sofas'; choose one of: airplanes, airplanes_nonl"),
        ("missing.csv", FileNotFoundError, "does not exist"),
    ],
)
def test_bad_specs(spec, error, message):
    with pytest.raises(error, match=message):
        open_data(spec)


def test_the_procedural_voxel_set_keeps_its_per_class_split():
    split = open_data("voxel-classes", n_train=40, n_test=10, resolution=16, seed=0)
    assert (split.kind == "voxels") and not (split.kind == "shapes")
    assert split.train.voxels.shape[1:] == (16, 16, 16)
    # 5 grids per class; the last of each class is the test grid
    assert (len(split.train), len(split.test)) == (40, 10)
    assert split.test.labels.tolist() == list(range(len(VOXEL_CLASSES)))
    full = voxel_classes(5, 16, seed=0)
    torch.testing.assert_close(split.test.voxels, full.subset("test").voxels)


def test_voxel_files_and_folders_open_as_voxels(tmp_path):
    grids = voxel_classes(5, 16, seed=1)
    save_voxels(tmp_path / "v.npz", grids)  # keeps its split
    split = open_data(tmp_path / "v.npz", resolution=16)
    assert (split.kind == "voxels") and (len(split.train), len(split.test)) == (40, 10)
    np.save(tmp_path / "stack.npy", grids.voxels.numpy())  # no split: drawn at random
    split = open_data(tmp_path / "stack.npy", resolution=16, test_fraction=0.2, seed=3)
    assert (len(split.train), len(split.test)) == (40, 10)
    for c in ("box", "cone"):
        for part in ("train", "test"):
            (tmp_path / "root" / c / part).mkdir(parents=True)
            np.save(tmp_path / "root" / c / part / "0.npy", np.ones((12, 12, 12), bool))
    split = open_voxels(tmp_path / "root", resolution=16)  # 12^3 centre-padded to 16^3
    assert split.train.class_names == ("box", "cone") and len(split.test) == 2
    assert split.train.voxels.sum() == 2 * 12**3 and not split.train.voxels[:, :2].any()


def test_sprite_sets_draw_fresh_test_scenes_from_the_next_seed():
    split = open_data("sprites-8", n_train=5, n_test=3, seed=4)
    assert split.train.exists.shape == (5, 8) and len(split.test) == 3
    torch.testing.assert_close(split.test.images, multi_sprites(3, 8, seed=5).images)


def test_fit_resolution_pads_and_crops_around_the_centre():
    grid = torch.zeros(1, 6, 6, 6, dtype=torch.bool)
    grid[0, 2:4, 2:4, 2:4] = True
    assert fit_resolution(grid, 6) is grid
    padded = fit_resolution(grid, 10)
    assert padded.shape == (1, 10, 10, 10) and padded[0, 4:6, 4:6, 4:6].all()
    torch.testing.assert_close(fit_resolution(padded, 6), grid)


def test_bad_files(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="no files in the ModelNet layout"):
        open_data(tmp_path / "folder")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))  # one grid
    with pytest.raises(ValueError, match="cannot split 1 voxel grids"):
        open_data(tmp_path / "cube.npy")
    np.save(tmp_path / "line.npy", np.zeros(5))
    with pytest.raises(ValueError, match="2-D array of rows"):
        open_data(tmp_path / "line.npy")
    with pytest.raises(FileNotFoundError, match="no voxel data at 'nowhere'"):
        open_voxels("nowhere")
    np.savez(tmp_path / "two.npz", a=np.zeros((4, 2)), b=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="name the data array 'x'"):
        open_data(tmp_path / "two.npz")
    (tmp_path / "bad.csv").write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="cannot read data rows"):
        open_data(tmp_path / "bad.csv")
