import json
import math

import pytest
import torch

from pgm3d.cli import main
from pgm3d.data import drop_parts, shapes
from pgm3d.experiments import EXPERIMENTS, ShapesSettings, run_shapes

TINY = dict(
    n_train=120,
    n_test=20,
    epochs=3,
    completion_shapes=12,
    samples=40,
    embed_epochs=2,
    iwae_samples=8,
    ll_shapes=10,
    normal_shapes=6,
    linearity_shapes=30,
    check_every=1,
    kl_warmup=2,
)


def test_quick_run_writes_tables_metrics_and_figures(tmp_path):
    out = tmp_path / "run"
    metrics = run_shapes(ShapesSettings.quick(family="airplanes", **TINY), out, progress=False)
    assert EXPERIMENTS["shapes"] is run_shapes
    names = {p.name for p in out.iterdir()}
    assert {
        "table.md",
        "results.json",
        "metrics.json",
        "symmetry_hist.png",
        "latent_activity.png",
        "embedding_2d.png",
        "interpolation.png",
        "traversals.png",
        "samples_shapevae_8.png",
        "samples_shapefa_8.png",
        "samples_diagonal.png",
        "validation.png",
        "surfaces.png",
        "surface_points.png",
    } <= names
    assert any(n.endswith(".ply") for n in names) and any(n.startswith("surface_") for n in names)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["family"] == "airplanes" and saved["settings"]["epochs"] == 3
    ll = metrics["test_log_likelihood_nats_per_dim"]
    assert set(ll) == {"Diagonal", "ShapeVAE-8", "ShapeFA-8"} and all(
        math.isfinite(v) for v in ll.values()
    )
    methods = set(metrics["completion_mse"])
    assert {
        "ShapeVAE-8 mwg",
        "ShapeVAE-8 pseudo_gibbs",
        "ShapeFA-8 exact",
        "ShapeFA-8 sca",
        "ShapeFA-8 fca",
        "Diagonal pattern-mean",
    } == methods
    assert all(v > 0 for v in metrics["completion_mse"].values())
    assert metrics["symmetry_mean"]["training data"] < 1e-9
    table = (out / "table.md").read_text()
    assert "Table 3.1" in table and "Table 3.2" in table and "plane fit" in table
    # early stopping: 3 validation checks, the best one kept; the family's linearity measured
    assert 1 <= metrics["validation_best_epoch"]["ShapeVAE-8"] <= 3
    assert "best epoch" in table and "nonlinear residual" in table
    assert "reached over 2 steps" in table  # the KL warm-up
    assert set(metrics["family_nonlinear_residual"]) == {"airliner", "fighter", "prop", "tailless"}


def test_unknown_settings_are_refused():
    with pytest.raises(ValueError, match=r"unknown settings \['epoch'\]"):
        ShapesSettings.quick(epoch=3)
    with pytest.raises(ValueError, match="did you mean 'epochs'"):
        ShapesSettings.full(epoch=3)
    with pytest.raises(ValueError, match="family must be one of"):
        ShapesSettings(family="boats")


def test_cli_passes_its_options_to_the_experiment(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake(settings, out, **kwargs):
        seen.update(kwargs, settings=settings, out=out)
        (tmp_path / "table.md").write_text("| table |")
        return {"seconds": 0.0}

    # the command dispatches through the registry: replace the entry for the test's length
    monkeypatch.setitem(EXPERIMENTS._entries, "shapes", fake)
    code = main(
        [
            "experiment",
            "shapes",
            "--family",
            "tables",
            "--quick",
            "--out",
            str(tmp_path),
            "--epochs",
            "2",
            "--latent-dims",
            "4",
            "16",
            "--kl-weight",
            "100",
        ]
    )
    assert code == 0 and "| table |" in capsys.readouterr().out
    s = seen["settings"]
    assert s.family == "tables" and s.epochs == 2 and s.latent_dims == (4, 16)
    assert s.kl_weight == 100.0 and s.n_train == ShapesSettings.QUICK["n_train"]  # --quick
    assert s == ShapesSettings.quick(family="tables", epochs=2, latent_dims=[4, 16], kl_weight=100)
    with pytest.raises(SystemExit):  # argparse lists the valid families
        main(["experiment", "shapes", "--family", "boats"])


def test_drop_parts_keeps_some_and_drops_some():
    data = shapes("chairs", 400, seed=0, points_per_part=2)
    dropped = drop_parts(data.existence, 0.25, generator=torch.Generator().manual_seed(0))
    assert not (dropped & ~data.existence).any()
    n = dropped.sum(-1)
    assert (n >= 1).all() and (n < data.existence.sum(-1)).all()
    rate = dropped.sum() / data.existence.sum()
    assert 0.25 < rate < 0.45  # conditioning on at least one drop raises the rate above 0.25
    with pytest.raises(ValueError, match="at least two parts"):
        drop_parts(torch.tensor([[True, False]]))
    with pytest.raises(ValueError, match="p_drop"):
        drop_parts(data.existence, 1.0)
