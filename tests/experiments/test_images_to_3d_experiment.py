"""pgm3d experiment images-to-3d end to end at a tiny size."""

import json

import pytest

from pgm3d.experiments import EXPERIMENTS, ImagesTo3DSettings, run_images_to_3d
from pgm3d.experiments.images_to_3d import PAPER


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("images_to_3d")
    settings = ImagesTo3DSettings.quick(n_per_class=15, views=3, steps=2)
    return out, run_images_to_3d(settings, out, progress=False)


def test_it_writes_the_iu_table_and_figures(run):
    out, metrics = run
    assert EXPERIMENTS["images-to-3d"] is run_images_to_3d
    assert {
        "table.md",
        "metrics.json",
        "iou_by_view.png",
        "ambiguous_single.png",
        "gan_reconstructions_single.png",
        "gan_arithmetic_single.png",
    } <= {p.name for p in out.iterdir()}
    rows = metrics["iou"]["single"]
    rezende = ["Rezende et al., fixed camera", "Rezende et al., learnable camera"]
    gans = ["3D-VAE-GAN", "3D-VAE-GAN, alpha_2 = 1"]  # the paper's alpha_2, and 1
    assert list(rows) == ["ptn-proj", "ptn-comb", "cnn-vol", "nearest neighbour", *gans,
                          *rezende]  # fmt: skip
    assert all(0 < r["test_ap"] <= 1 for r in rows.values())
    assert all(0 <= r["test"] <= 1 for r in rows.values())
    # nearest neighbour retrieves a chair of the same pose: it overlaps the truth
    assert rows["nearest neighbour"]["test"] > 0.1
    assert len(metrics["iou_by_view"]["single: ptn-proj"]) == 3
    assert len(metrics["iou_by_view"]["single: 3D-VAE-GAN"]) == 3
    assert metrics["paper"] == PAPER and len(metrics["findings"]) == 3
    table = (out / "table.md").read_text()
    assert "paper test" in table and "0.5027" in table
    assert json.loads((out / "metrics.json").read_text())["findings"] == metrics["findings"]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="n_per_class must be >= 3"):
        ImagesTo3DSettings.quick(n_per_class=2)
    with pytest.raises(ValueError, match="ptn_width, gan_width, lr and gan_lr_d must be > 0"):
        ImagesTo3DSettings.quick(ptn_width=0.0)
    with pytest.raises(ValueError, match="ptn_width, gan_width, lr and gan_lr_d must be > 0"):
        ImagesTo3DSettings.quick(gan_lr_d=0.0)
    with pytest.raises(ValueError, match="gan_recon_weights must be >= 0"):
        ImagesTo3DSettings.quick(gan_recon_weights=(1e-4, -1.0))


def test_ap_is_averaged_per_class_when_there_are_several():
    import torch

    from pgm3d.data import primitives
    from pgm3d.data.views import render_views
    from pgm3d.experiments.images_to_3d import _ap

    views = render_views(primitives(2, 16, seed=0, classes=("cube", "cylinder")), views=2)
    ap = torch.tensor([0.2, float("nan"), 0.6, 0.8])[: len(views)]
    labels = views.labels
    row = _ap(ap, views)
    assert row["test_ap"] == pytest.approx(float(ap.nanmean()))
    for c, name in enumerate(views.shapes.class_names):
        assert row["test_ap_by_class"][name] == pytest.approx(float(ap[labels == c].nanmean()))
    assert "test_ap_by_class" not in _ap(ap[:2], views[labels == labels[0]])
