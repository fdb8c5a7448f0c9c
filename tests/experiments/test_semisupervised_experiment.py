import json

import pytest
import torch

from pgm3d.experiments import EXPERIMENTS, SemiSupervisedSettings, run_semisupervised
from pgm3d.experiments.semisupervised import labelled_subset, train_classifier


def test_labelled_subset_is_balanced_and_hides_the_rest():
    labels = torch.arange(10).repeat(30)
    y = labelled_subset(labels, 50, torch.Generator().manual_seed(0))
    known = y >= 0
    assert int(known.sum()) == 50
    assert torch.equal(y[known], labels[known])
    assert torch.bincount(y[known], minlength=10).tolist() == [5] * 10
    with pytest.raises(ValueError, match="balanced"):
        labelled_subset(labels, 55, torch.Generator())
    with pytest.raises(ValueError, match="fewer than"):
        labelled_subset(labels, 400, torch.Generator())


def test_the_classifier_fits_separable_labels():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 2, generator=g)
    y = (x[:, 0] > 0).long()
    net = train_classifier(x, y, hidden=16, steps=300, lr=1e-2, seed=0)
    assert float((net(x).argmax(-1) == y).float().mean()) > 0.95


def test_quick_run_writes_errors_findings_and_the_analogies(tmp_path):
    s = SemiSupervisedSettings.quick(labels=(50, 100), seeds=2, epochs=2, m1_epochs=1,
                                     classifier_steps=20, hidden=32, m1_hidden=32,
                                     latent_dim=4)  # fmt: skip
    metrics = run_semisupervised(s, tmp_path, progress=False)
    assert EXPERIMENTS["semisupervised"] is run_semisupervised
    assert {"table.md", "metrics.json", "analogies.png"} <= {p.name for p in tmp_path.iterdir()}
    saved = json.loads((tmp_path / "metrics.json").read_text())["test_error_percent"]
    assert set(saved) == {"50", "100"}
    for row in saved.values():
        assert set(row) == {"labels only", "M1", "M2"}
        assert all(0 <= r["error"] <= 100 and len(r["per_seed"]) == 2 for r in row.values())
    assert len(metrics["findings"]) == 2
    assert "Kingma et al. 2014" in (tmp_path / "table.md").read_text()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="multiples of 10"):
        SemiSupervisedSettings.quick(labels=(55,))
    with pytest.raises(ValueError, match="epochs"):
        SemiSupervisedSettings.quick(epochs=0)
