"""pgm3d experiment inversion (thesis ch. 6) end to end at a tiny size."""

import json

import pytest

from pgm3d.experiments import EXPERIMENTS, InversionSettings, run_inversion
from pgm3d.experiments.inversion import LAYERS, THESIS

TINY = {
    "classifier_epochs": 2,
    "epochs": 1,
    "channels": 4,
    "pixel_layers": 1,
    "mse_epochs": 2,
    "samples": 2,
    "table_rows": 5,
    "dynamics_steps": (0, 5),
    "overfit_rows": 20,
    "architectures": ("conv", "conv-pool", "fc"),
    "affine_epochs": 1,
    "figure_rows": 2,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("inversion")
    return out, run_inversion(InversionSettings.quick(**TINY), out, progress=False)


def test_it_writes_every_table_and_figure(run):
    out, metrics = run
    assert EXPERIMENTS["inversion"] is run_inversion
    assert {"table.md", "metrics.json", "samples.png", "architectures.png", "nce.png"} <= {
        p.name for p in out.iterdir()
    }
    assert set(metrics["nce"]) == {"unconditional", *LAYERS}
    assert all(v < 0 for v in metrics["nce"].values())  # log-probabilities of discrete images
    for layer in LAYERS:
        mi = metrics["mutual_information"][layer]
        assert mi["inversion"] == pytest.approx(
            metrics["nce"][layer] - metrics["nce"]["unconditional"]
        )
        assert 0 <= mi["kde"] <= 6.0  # at most log N = log 359
        row = metrics["table_6_1"][layer]
        assert row["IM-NN"] <= row["IM-S"] + 1e-9 and row["1NN"] >= 0
    assert list(metrics["dynamics_fc3_nce"]) == ["0 steps", "5 steps", "overfitted (20 examples)"]
    assert set(metrics["architectures"]) == {"conv", "conv-pool", "fc"}
    assert metrics["thesis_affnist"] == THESIS
    table = (out / "table.md").read_text()
    assert "Table 6.1" in table and "thesis accuracy" in table
    assert len(metrics["findings"]) == 5
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["nce"] == pytest.approx(metrics["nce"])


def test_bad_settings_are_refused_before_anything_is_written(tmp_path):
    for kwargs, match in [
        ({"epochs": 0}, "epochs"),
        ({"dropout": 1.0}, "dropout"),
        ({"noise": 0.0}, "noise"),
        ({"dynamics_steps": (-1,)}, "dynamics"),
    ]:
        with pytest.raises(ValueError, match=match):
            InversionSettings.quick(**kwargs)
    assert not any(tmp_path.iterdir())
