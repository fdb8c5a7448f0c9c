"""Interactive 3D views: the traces, the view file, and their place in the report."""

import builtins
import json

import numpy as np
import pytest
import torch

from pgm3d.data import shapes
from pgm3d.viz import render_shapes
from pgm3d.viz.interactive import points_trace, view_path, voxels_trace, write_view
from pgm3d.viz.report import build_report


def test_a_voxel_surface_shares_its_corners():
    one = np.zeros((4, 4, 4), bool)
    one[1, 2, 3] = True
    trace = voxels_trace(one)
    assert len(trace["x"]) == 8 and len(trace["i"]) == 12  # a cube: 8 corners, 12 triangles
    assert min(trace["x"]) == pytest.approx(1 / 4 - 0.5) and max(trace["z"]) == pytest.approx(0.5)
    two = one.copy()
    two[1, 2, 2] = True  # a neighbour: the shared face is not drawn, its corners are shared
    trace = voxels_trace(two)
    assert len(trace["x"]) == 12 and len(trace["i"]) == 20


def test_points_leave_out_absent_points_and_thin_large_clouds():
    p = np.random.default_rng(0).normal(size=(10_000, 3))
    mask = np.arange(10_000) % 2 == 0
    trace = points_trace(p, part_of_point=np.arange(10_000) % 3, mask=mask)
    assert len(trace["x"]) <= 4000 and len(trace["marker"]["color"]) == len(trace["x"])
    kept = np.array([trace["x"], trace["y"], trace["z"]]).T
    assert np.allclose(kept[0], p[0].round(4)) and np.allclose(kept[1], p[4].round(4))


def test_render_shapes_writes_a_view_with_one_scene_and_a_menu(tmp_path):
    data = shapes("chairs", 3, seed=0, points_per_part=50)
    png = render_shapes(data, tmp_path / "chairs.png", titles=["a", "b", "c"])
    spec = json.loads(view_path(png).read_text())
    assert [t["visible"] for t in spec["data"]] == [True, False, False]
    assert spec["layout"]["scene"]["camera"]["up"] == {"x": 0, "y": 1, "z": 0}  # y is up
    buttons = spec["layout"]["updatemenus"][0]["buttons"]
    assert [b["label"] for b in buttons] == ["a", "b", "c"]
    assert buttons[2]["args"][0]["visible"] == [False, False, True]
    render_shapes(data, tmp_path / "no.png", view=False)
    assert not view_path(tmp_path / "no.png").exists()


def test_the_report_embeds_each_view_under_its_png_and_plotly_once(tmp_path):
    render_shapes(torch.rand(2, 30, 3), tmp_path / "a.png")
    render_shapes(torch.rand(2, 8, 8, 8) > 0.5, tmp_path / "b.png", kind="voxels")
    page = build_report(tmp_path).read_text()
    assert page.count('class="view3d"') == 2 and page.count("Plotly.newPlot") == 1
    assert page.count("plotly.js v") <= 2  # the bundle's banner: inlined once
    assert page.index("a.png") < page.index('id="view0"') < page.index("b.png")
    with pytest.raises(ValueError, match="at least one panel"):
        write_view(tmp_path / "c.png", [])


def test_without_plotly_the_report_says_how_to_get_the_views(tmp_path, monkeypatch):
    render_shapes(torch.rand(1, 30, 3), tmp_path / "a.png")
    real = builtins.__import__

    def no_plotly(name, *args, **kwargs):
        if name.startswith("plotly"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_plotly)
    page = build_report(tmp_path).read_text()
    assert "interactive views need the plotly package" in page


def test_diagnostic_figures_of_chains_and_k_hat(tmp_path):
    from pgm3d.viz.diagnostics import khat_strip, trace_and_rank

    draws = torch.randn(3, 40, 5, 2)
    assert trace_and_rank(draws, tmp_path / "t.png").stat().st_size > 0
    k = {"exact": torch.full((6,), -float("inf")), "fca": torch.tensor([0.1, 0.3, 0.9, 0.2, -0.1,
                                                                         0.5])}  # fmt: skip
    assert khat_strip(k, tmp_path / "k.png").stat().st_size > 0
