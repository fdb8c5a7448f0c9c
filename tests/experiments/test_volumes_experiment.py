"""pgm3d experiment volumes (Rezende et al. 2016) end to end at a tiny size."""

import json

import pytest

from pgm3d.experiments import EXPERIMENTS, VolumesSettings, run_volumes

TINY = {"resolution": 16, "baselines": ("conv-vae",), "datasets": ("necker-cube", "primitives"),
        "hidden": 16, "patch": 4, "figure_rows": 2, "completion_steps": 9}  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("volumes")
    return out, run_volumes(VolumesSettings.quick(**TINY), out, progress=False)


def test_it_writes_every_table_and_figure(run):
    out, metrics = run
    assert EXPERIMENTS["volumes"] is run_volumes
    names = {p.name for p in out.iterdir()}
    for name in ("necker-cube", "primitives"):
        assert {f"samples_{name}.png", f"completion_{name}.png"} <= names
        assert list(metrics["bounds"][name]) == ["sequential T=1", "sequential T=2", "conv-vae"]
        assert all(r["test_iwae"] < 0 and r["seconds_per_epoch"] > 0
                   for r in metrics["bounds"][name].values())  # fmt: skip
        assert set(metrics["completion"][name]) == {"pseudo_gibbs", "mwg"}  # numbers only
        for method in ("pseudo_gibbs", "mwg"):
            errors = metrics["completion"][name][method]["error_by_step"]
            assert len(errors) == 9 and all(0 <= e <= 1 for e in errors)
        assert 0 < metrics["completion"][name]["mwg"]["acceptance"] <= 1
    # the class-conditional model skips the one-class Necker cubes
    assert metrics["conditional"]["class"]["data"] == "primitives"
    assert "class_conditional_primitives.png" in names
    view = metrics["conditional"]["view"]
    assert view["data"] == "necker-cube" and 0 <= view["silhouette_iou"] <= 1
    assert {"table.md", "metrics.json", "completion_error.png",
            "view_conditional_necker-cube.png"} <= names  # fmt: skip
    table = (out / "table.md").read_text()
    assert "missing left half" in table and "View-conditional" in table
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["findings"] == metrics["findings"] and len(metrics["findings"]) == 11


def test_bad_settings_are_refused_before_anything_is_written(tmp_path):
    for kwargs, match in [
        ({"epochs": 0}, "epochs"),
        ({"steps": (0, 2)}, "steps"),
        ({"resolution": 16}, "the VSL runs at 30³ or 32³"),
        ({"resolution": 18, "baselines": ("conv-vae",)}, "multiple of 4"),
    ]:
        with pytest.raises(ValueError, match=match):
            VolumesSettings.quick(**kwargs)
    assert not any(tmp_path.iterdir())
