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
    "count_curve.png",
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


def test_fresh_scenes_an_annealed_rate_and_the_counting_curve(tmp_path):
    settings = MVAESettings.quick(
        n_train=32, n_test=16, n_count=16, epochs=2, ll_rows=2, width=8, channels=8,
        fresh=True, lr_final=1e-4, curve_scenes=16,
    )  # fmt: skip
    m = run_mvae(settings, tmp_path)
    assert [c["epoch"] for c in m["count_curve"]] == [1, 2]
    assert [c["steps"] for c in m["count_curve"]] == [1, 2]  # 32 scenes, batch 32
    assert all(0 <= c["test_accuracy"] <= 1 for c in m["count_curve"])
    assert "Counting over training" in (tmp_path / "table.md").read_text()


def test_the_projection_of_the_counting_curve():
    from pgm3d.experiments.mvae import _projection

    rising = [{"steps": 10**k, "test_accuracy": 0.3 + 0.1 * k} for k in range(1, 5)]
    assert _projection(rising, 0.726) == pytest.approx(10**4.26, rel=0.01)
    assert _projection(rising, 0.5) == 10**4  # already reached
    flat = [{"steps": 10**k, "test_accuracy": 0.4} for k in range(1, 5)]
    assert _projection(flat, 0.726) is None and _projection(rising[:2], 0.726) is None
