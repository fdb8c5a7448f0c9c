import json

import pytest
import torch

from pgm3d.experiments import EXPERIMENTS, CVAESettings, run_cvae
from pgm3d.experiments.cvae import GIVEN_QUADRANTS, quadrant_data


def test_quadrant_data_hides_the_missing_quadrants_from_the_input():
    images = torch.linspace(-1, 1, 2 * 64).reshape(2, 64)
    for given in GIVEN_QUADRANTS:
        x, y, mask = quadrant_data(images, given)
        assert set(y.unique().tolist()) <= {0.0, 1.0}
        assert (x[mask] == -1).all() and torch.equal(x[~mask], y[~mask])
        # each quadrant of an 8x8 image holds 16 pixels
        assert int((~mask[0]).sum()) == 16 * given
    _, _, one = quadrant_data(images, 1)
    grid = (~one[0]).reshape(8, 8)
    assert grid[4:, :4].all() and not grid[:4].any()  # the bottom-left quadrant is given
    with pytest.raises(ValueError, match="given must be one of"):
        quadrant_data(images, 4)


def test_quick_run_writes_the_table_the_findings_and_the_figure(tmp_path):
    s = CVAESettings.quick(epochs=2, baseline_epochs=2, is_samples=4, mc_samples=4)
    metrics = run_cvae(s, tmp_path, progress=False)
    assert EXPERIMENTS["cvae"] is run_cvae
    assert {"table.md", "metrics.json", "samples_1q.png"} <= {p.name for p in tmp_path.iterdir()}
    row = json.loads((tmp_path / "metrics.json").read_text())["conditional_log_likelihood"]["1"]
    assert set(row) == {"baseline", "CVAE (IS)", "CVAE (MC)", "GSNN (MC)", "hybrid (IS)",
                        "hybrid (MC)", "VAEAC (IS)"}  # fmt: skip
    assert all(v["mean"] < 0 and v["se"] > 0 for v in row.values())
    assert len(metrics["findings"]) == 7
    mse = metrics["imputation_mse"]["1"]
    assert set(mse) == {"baseline", "CVAE", "VAEAC"}
    assert all(0 < v["mean"] < 1 and v["se"] > 0 for v in mse.values())
    text = (tmp_path / "table.md").read_text()
    assert "Conditional log-likelihood" in text and "Imputation MSE" in text


def test_the_command_line_takes_numeric_choices(tmp_path, capsys):
    from pgm3d.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["experiment", "cvae", "--quadrants", "4", "--out", str(tmp_path / "x")])
    assert stop.value.code == 2
    assert "invalid choice: 4 (choose from 1, 2, 3)" in capsys.readouterr().err
    argv = "experiment cvae --quick --quadrants 2 --epochs 1 --baseline-epochs 1 --quiet --out"
    assert main([*argv.split(), str(tmp_path / "y")]) == 0
    saved = json.loads((tmp_path / "y" / "metrics.json").read_text())
    assert saved["settings"]["quadrants"] == [2]
    assert set(saved["conditional_log_likelihood"]) == {"2"}


def test_the_vaeac_comparison_can_be_turned_off_by_flag_and_by_config(tmp_path):
    from pgm3d.cli import main

    argv = "experiment cvae --quick --epochs 1 --baseline-epochs 1 --no-vaeac --quiet --out"
    assert main([*argv.split(), str(tmp_path / "a")]) == 0
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert saved["settings"]["vaeac"] is False
    assert "VAEAC (IS)" not in saved["conditional_log_likelihood"]["1"]
    config = tmp_path / "c.toml"
    config.write_text("[experiment.cvae]\nvaeac = false\nepochs = 1\nbaseline_epochs = 1\n")
    argv = ["experiment", "cvae", "--quick", "--config", str(config), "--quiet", "--out"]
    assert main([*argv, str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["settings"]["vaeac"] is False
