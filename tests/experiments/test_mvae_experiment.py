"""pgm3d experiment mvae: a small run writes every figure, the counting table and metrics."""

import json

import pytest

from pgm3d.experiments import MVAESettings, run_mvae

FIGURES = {
    "training_curves.png",
    "reconstructions.png",
    "samples.png",
    "entity_exchange.png",
    "sequential_decoding.png",
    "traversals.png",
    "traversals_vae.png",
    "kl_maps.png",
    "kl_map_scenes.png",
}


def test_a_small_run_writes_figures_counting_and_both_models(tmp_path):
    settings = MVAESettings.quick(
        n_train=48, n_test=24, n_count=24, epochs=2, ll_rows=4, width=8, channels=8
    )
    m = run_mvae(settings, tmp_path)
    assert FIGURES | {"metrics.json", "table.md", "mvae.pt", "vae.pt"} <= {
        p.name for p in tmp_path.iterdir()
    }
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["count_accuracy_test"] == m["counting"]["test_accuracy"]
    assert 0 <= m["count_accuracy_train"] <= 1 and m["num_objects"] == 5
    assert len(m["mvae"]["train_elbo_per_epoch"]) == len(m["vae"]["train_elbo_per_epoch"]) == 2
    assert sum(map(sum, m["counting"]["test_confusion"])) == 24
    assert "thesis (train / test) | 74.4% / 72.6%" in (tmp_path / "table.md").read_text()


def test_eight_sprites_get_more_object_slots_and_bad_settings_are_refused(tmp_path):
    settings = MVAESettings.quick(
        max_sprites=8, n_train=16, n_test=8, n_count=8, epochs=1, ll_rows=2, width=8, channels=8
    )
    m = run_mvae(settings, None)
    assert m["num_objects"] == 10 and len(m["counting"]["test_confusion"]) == 9
    with pytest.raises(ValueError, match="unknown settings"):
        MVAESettings.quick(sprites=3)
    with pytest.raises(ValueError, match="max_sprites must be >= 1"):
        MVAESettings(max_sprites=0)
