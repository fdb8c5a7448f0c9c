import pytest
import torch

from pgm3d.data import shapes, voxel_classes
from pgm3d.viz import interpolation_strip, render_point_cloud, render_shapes, render_voxels
from pgm3d.viz.shapes import surface_quads

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG


def test_point_cloud_figures(tmp_path):
    chairs = shapes("chairs", 4, seed=0, points_per_part=32)
    planes = shapes("airplanes", 2, seed=0, points_per_part=32)
    assert _is_png(render_shapes(chairs, tmp_path / "grid.png", ncols=2, titles=list("abcd")))
    assert _is_png(render_shapes([chairs, planes], tmp_path / "mixed.png"))
    assert _is_png(
        render_point_cloud(
            chairs.points[0],
            tmp_path / "one.png",
            normals=chairs.normals[0],
            part_of_point=chairs.part_of_point,
            show_normals=True,
        )
    )
    frames = torch.lerp(chairs.points[0], chairs.points[1], torch.linspace(0, 1, 5)[:, None, None])
    assert _is_png(
        interpolation_strip(frames, tmp_path / "strip.png", part_of_point=chairs.part_of_point)
    )


def test_voxel_figures(tmp_path):
    vs = voxel_classes(1, resolution=16, seed=0, classes=["torus", "chair"], progress=False)
    assert _is_png(
        render_shapes(vs, tmp_path / "vox.png", kind="voxels", titles=list(vs.class_names))
    )
    assert _is_png(render_voxels(vs.voxels[0], tmp_path / "one.png"))


def test_surface_quads_of_a_single_voxel_and_a_slab():
    grid = torch.zeros(3, 3, 3, dtype=torch.bool)
    grid[1, 1, 1] = True
    quads, normals = surface_quads(grid)
    assert quads.shape == (6, 4, 3) and (abs(normals).sum(-1) == 1).all()
    grid[:, :, 1] = True  # a 3x3x1 slab: 9 top + 9 bottom + 12 side faces
    assert surface_quads(grid)[0].shape[0] == 30


def test_bad_figure_arguments(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        render_shapes(torch.zeros(1, 5, 3), tmp_path / "x.png", kind="mesh")
    with pytest.raises(ValueError, match="titles"):
        render_shapes(torch.zeros(2, 5, 3), tmp_path / "x.png", titles=["one"])
    with pytest.raises(ValueError, match="nothing"):
        render_shapes(torch.zeros(0, 5, 3), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\(P, 3\)"):
        render_point_cloud(torch.zeros(5, 2), tmp_path / "x.png")
