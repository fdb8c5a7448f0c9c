"""Image figures: RGB grids, scalar maps, completion grids, voxel completion grids."""

import pytest
import torch

from pgm3d.viz import completion_grid, image_grid, voxel_completion_grid


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rgb_and_scalar_grids_are_written(tmp_path):
    rgb = torch.rand(2, 3, 3, 8, 8)
    image_grid(rgb, tmp_path / "rgb.png", row_titles=["a", "b"], col_titles=["x", "y", "z"])
    image_grid(torch.rand(2, 4, 5, 5), tmp_path / "maps.png", cmap="magma", title="maps")
    assert _is_png(tmp_path / "rgb.png") and _is_png(tmp_path / "maps.png")
    with pytest.raises(ValueError, match=r"images must be \(R, C, 3, H, W\)"):
        image_grid(torch.rand(3, 8, 8), tmp_path / "bad.png")


def test_completion_grids_of_images_and_volumes(tmp_path):
    truth = torch.rand(2, 16) * 2 - 1
    mask = torch.rand(2, 16) > 0.5
    completion_grid(truth, mask, {"exact": truth}, (4, 4), tmp_path / "c.png", title="t")
    grids = (torch.rand(2, 6**3) > 0.5).float()
    observed = torch.ones(2, 6**3, dtype=torch.bool)
    voxel_completion_grid(grids, observed, {"mwg": grids}, tmp_path / "v.png")
    assert _is_png(tmp_path / "c.png") and _is_png(tmp_path / "v.png")


def test_drawing_a_figure_leaves_the_users_matplotlib_backend_alone(tmp_path):
    """pgm3d draws with matplotlib's object API; a notebook's backend is never switched."""
    import subprocess
    import sys

    code = (
        "import matplotlib; matplotlib.use('svg'); import torch\n"
        "import pgm3d.viz, pgm3d.experiments, pgm3d.cli\n"
        "from pgm3d.viz import image_grid\n"
        f"image_grid(torch.rand(1, 2, 4, 4), r'{tmp_path / 'g.png'}', cmap='gray')\n"
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_an_error_row_under_each_image_and_the_reveal_figure(tmp_path):
    from matplotlib.image import imread

    from pgm3d.viz import reveal_figure

    g = torch.Generator().manual_seed(0)
    truth = torch.rand(2, 64, generator=g) * 2 - 1
    mask = torch.rand(2, 64, generator=g) > 0.5
    done = {"a": torch.where(mask, truth, 0.0)}
    plain = imread(completion_grid(truth, mask, done, (8, 8), tmp_path / "p.png"))
    errors = imread(completion_grid(truth, mask, done, (8, 8), tmp_path / "e.png", error_row=True))
    assert errors.shape[0] > 1.5 * plain.shape[0]  # a row of squared errors under each image
    stds = torch.rand(3, 64, generator=g)
    path = reveal_figure(truth[:1].expand(3, -1), stds, [0, 4, 8], (8, 8), tmp_path / "r.png")
    assert imread(path).shape[1] > imread(path).shape[0]  # one column per reveal
