"""The classification protocol: SVM with C by cross-validation, VoxNet, the experiment."""

import json

import numpy as np
import pytest

from pgm3d.data import save_voxels, voxel_classes
from pgm3d.experiments import ClassifySettings, run_classify
from pgm3d.experiments.classify import svm_accuracy


def test_svm_chooses_c_on_training_data_and_reports_a_confusion_matrix():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 5)) * 4
    y = np.repeat(np.arange(3), 20)
    x = centres[y] + rng.normal(size=(60, 5))
    result = svm_accuracy(x[::2], y[::2], x[1::2], y[1::2], "rbf")
    assert result["accuracy"] > 0.9 and result["C"] in np.logspace(-3, 3, 7)
    assert np.asarray(result["confusion"]).sum() == 30
    assert np.trace(np.asarray(result["confusion"])) == round(30 * result["accuracy"])


@pytest.mark.parametrize("model", ["vsl", "gan"])
def test_quick_run_writes_accuracy_reference_and_figures(tmp_path, model):
    settings = ClassifySettings.quick(
        model=model,
        n_per_class=4,
        epochs=1,
        cnn_epochs=1,
        gan_width=1 / 16,
        completion_rows=1,
    )
    m = run_classify(settings, tmp_path)
    assert 0 <= m["accuracy"] <= 1 and 0 <= m["supervised_voxnet_accuracy"] <= 1
    assert 0 <= m["untrained_accuracy"] <= 1
    assert m["n_train"] + m["n_test"] == 40
    assert np.asarray(m["svm"]["confusion"]).shape == (10, 10)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["accuracy"] == m["accuracy"]
    names = {p.name for p in tmp_path.iterdir()}
    assert {"confusion.png", "samples.png", "completion.png", "table.md", f"{model}.pt"} <= names


def test_a_voxel_file_with_a_split_is_accepted_and_bad_data_refused(tmp_path):
    data = voxel_classes(4, resolution=30, seed=1, classes=["sphere", "box"])
    save_voxels(tmp_path / "v.npz", data)
    quick = ClassifySettings.quick(epochs=1, cnn_epochs=1)
    m = run_classify(quick.replace(data=str(tmp_path / "v.npz")))
    assert m["classes"] == ["sphere", "box"] and m["resolution"] == 30
    with pytest.raises(FileNotFoundError, match="no voxel data"):
        run_classify(quick.replace(data=str(tmp_path / "none.npz")))
    with pytest.raises(ValueError, match="model must be one of: vsl, gan"):
        ClassifySettings(model="pointnet")


def test_a_modelnet_style_folder_is_accepted(tmp_path):
    data = voxel_classes(3, resolution=30, seed=2, classes=["torus", "cone"])
    for i, (grid, label) in enumerate(zip(data.voxels, data.labels, strict=True)):
        folder = tmp_path / data.class_names[label] / data.split[i]
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{i}.npy", grid.numpy())
    m = run_classify(ClassifySettings.quick(data=str(tmp_path), epochs=1, cnn_epochs=1))
    assert m["classes"] == ["cone", "torus"]  # sorted folder names
    assert (m["n_train"], m["n_test"]) == (4, 2)
