import json

import numpy as np
import pytest
import torch

from pgm3d.experiments import EXPERIMENTS, ImputationSettings, run_imputation
from pgm3d.experiments.imputation import METHODS, _components, _masks, load_imputation_data

TINY = {"seeds": 2, "epochs": 1, "latent_dim": 2, "hidden": 16, "proposals": 8, "draws": 2,
        "mwg_warmup": 2, "mwg_draws": 2, "trees": 2, "rounds": 1, "em_iterations": 3}  # fmt: skip


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("imputation")
    s = ImputationSettings.quick(**TINY)
    return out, s, run_imputation(s, out, progress=False)


def test_every_cell_has_every_method_with_seed_errors_and_times(digits_run):
    out, _, metrics = digits_run
    assert EXPERIMENTS["imputation"] is run_imputation
    assert set(metrics["results"]) == {f"digits/{r}/{p}" for r in ("complete", "missing")
                                       for p in ("mcar", "quarters")}  # fmt: skip
    for row in metrics["results"].values():
        assert set(row) == set(METHODS)
        for r in row.values():
            assert len(r["per_seed"]) == 2 and r["se"] >= 0 and r["seconds"] >= 0
            assert r["mse"] == pytest.approx(np.mean(r["per_seed"]))
    names = {p.name for p in out.iterdir()}
    assert {"table.md", "metrics.json", "examples_digits_mcar.png"} <= names
    assert "at least 10% below KNNImputer" in (out / "table.md").read_text()
    for row in metrics["results"].values():  # the deep models' latent use, the others' none
        for m in ("vae-mwg", "vae-importance", "miwae"):
            assert 0 <= row[m]["latent"] <= TINY["latent_dim"]
            assert all(float(u).is_integer() for u in row[m]["latent_per_seed"])
        assert row["vaeac"]["latent"] >= 0 and len(row["vaeac"]["latent_per_seed"]) == 2
        assert all("latent" not in row[m] for m in ("mean", "knn", "ppca", "fa"))
    assert "## Latent use" in (out / "table.md").read_text()
    f = metrics["findings"]["digits/complete/mcar"]
    assert f["best"] in METHODS and f["best_deep"] in ("vae-mwg", "vae-importance", "miwae",
                                                        "vaeac")  # fmt: skip


def test_mean_imputation_matches_an_independent_computation(digits_run):
    """Seed 0, complete training rows, MCAR: SimpleImputer's MSE by hand."""
    from pgm3d.data.images import load_digits, train_test_split

    _, s, metrics = digits_run
    x = ((load_digits().x + 1) / 2).float()
    g = torch.Generator().manual_seed(0)
    train, test = train_test_split(x, 0.2, generator=g)
    mask = _masks(test.shape, "mcar", load_imputation_data(s)[0], s.p_missing, g)
    filled = torch.where(mask, test, train.mean(0))
    per_row = ((filled - test) ** 2 * ~mask).sum(1) / (~mask).sum(1)
    got = metrics["results"]["digits/complete/mcar"]["mean"]["per_seed"][0]
    assert got == pytest.approx(float(per_row.mean()), rel=1e-5)


def test_vaeacs_latent_use_is_the_kl_of_its_proposal_to_its_prior(monkeypatch):
    """The nats VAEAC's latent carries: the closed-form KL of two diagonal Gaussians, averaged
    over rows under the training masks; 0 where the proposal is the prior (an unused latent)."""
    from pgm3d.experiments.imputation import _vaeac_kl
    from pgm3d.models import VAEAC

    torch.manual_seed(0)
    x = torch.rand(30, 6, dtype=torch.float64)
    mask = torch.rand(30, 6) > 0.2
    model = VAEAC(6, 3, (8,), "bernoulli").double().eval()
    noise = model.masks(0.5)
    b = noise({"b": model.no_mask(x)}, torch.Generator().manual_seed(4))["b"]
    q = model.proposal_distribution(x, mask, b).base_dist
    p = model.prior(x, mask, b)[0].base_dist
    by_hand = (
        torch.log(p.scale / q.scale) + (q.scale**2 + (q.loc - p.loc) ** 2) / (2 * p.scale**2) - 0.5
    ).sum(-1)
    assert _vaeac_kl(model, x, mask, noise, 4) == pytest.approx(float(by_hand.mean()), rel=1e-10)
    assert float(by_hand.mean()) > 0
    monkeypatch.setattr(model, "proposal_distribution", lambda x, m, b: model.prior(x, m, b)[0])
    assert _vaeac_kl(model, x, mask, noise, 4) == pytest.approx(0.0, abs=1e-12)


def test_masks_keep_an_entry_per_row():
    s = ImputationSettings.quick()
    table = load_imputation_data(s)[0]
    g = torch.Generator().manual_seed(0)
    m = _masks((2000, 3), "mcar", table, 0.5, g)
    # an eighth of the rows lost all three entries and got one back: 0.5 - 1/24 hidden
    assert m.any(1).all() and float((~m).double().mean()) == pytest.approx(0.458, abs=0.02)
    q = _masks((10, 64), "quarters", table, 0.5, g)
    assert ((~q).sum(1) == 16).all()
    x = torch.randn(50, 6, dtype=torch.float64)
    assert _components(x, torch.ones_like(x, dtype=torch.bool), 1.0) == 5


def test_a_users_table_from_csv_is_standardised_and_gets_mcar_only(tmp_path):
    from sklearn.datasets import load_wine

    path = tmp_path / "wine.csv"
    data = load_wine().data
    np.savetxt(path, data, delimiter=",", header=",".join(load_wine().feature_names),
               comments="")  # fmt: skip
    methods = ("mean", "knn", "ppca", "vaeac")
    s = ImputationSettings.quick(datasets=("table",), data=path, methods=methods,
                                 **{**TINY, "seeds": 1})  # fmt: skip
    metrics = run_imputation(s, tmp_path / "out", progress=False)
    assert set(metrics["results"]) == {"wine/complete/mcar", "wine/missing/mcar"}
    # standardised columns: imputing the training mean costs about one variance per entry
    assert 0.7 < metrics["results"]["wine/complete/mcar"]["mean"]["mse"] < 1.5


def test_bad_settings_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="p_missing"):
        ImputationSettings.quick(p_missing=1.0)
    with pytest.raises(FileNotFoundError, match="no such file"):
        ImputationSettings.quick(data=tmp_path / "absent.csv")
    with pytest.raises(ValueError, match="needs the table"):
        ImputationSettings.quick(datasets=("table",))
    with pytest.raises(ValueError, match="seeds"):
        ImputationSettings.quick(seeds=0)
    with pytest.raises(ValueError, match="em_holdout"):
        ImputationSettings.quick(em_holdout=1.0)
    with pytest.raises(ValueError, match="kl_warmup"):
        ImputationSettings.quick(kl_warmup=-1)
    with pytest.raises(ValueError, match="validation"):
        ImputationSettings.quick(validation=1.0)
    with pytest.raises(ValueError, match="patience"):
        ImputationSettings.quick(patience=0)
    for rate in (0.0, 1.0):
        with pytest.raises(ValueError, match="vaeac_mask_rate"):
            ImputationSettings.quick(vaeac_mask_rate=rate)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "rate, pattern, trained",
    [
        (None, "mcar", ("mcar", 0.5)),
        (0.2, "mcar", ("mcar", 0.2)),
        (0.2, "quarters", ("quarters", 0.25)),
    ],
)
def test_vaeacs_training_masks_hide_the_chosen_share_on_mcar_cells(rate, pattern, trained):
    """By default VAEAC trains on masks of the test masks' rate; ``vaeac_mask_rate`` sets the
    rate of its mcar masks (its authors' imputation code: 0.2), and leaves quarters alone."""
    from pgm3d.experiments.imputation import _Run

    s = ImputationSettings.quick(**{**TINY, "seeds": 1}, vaeac_mask_rate=rate)
    table = load_imputation_data(s)[0]
    x = table.x[:40]
    mask = _masks(x[:8].shape, pattern, table, 0.5, torch.Generator().manual_seed(0))
    run = _Run(table, s, 0, x[8:], torch.ones_like(x[8:], dtype=torch.bool), x[:8], mask, pattern)
    model, noise = run.vaeac()
    assert model.trained_masks == trained
    if pattern == "mcar":
        b = noise({"b": torch.zeros(4000, 64, dtype=torch.bool)}, torch.Generator().manual_seed(1))
        assert float(b["b"].double().mean()) == pytest.approx(trained[1], abs=0.01)


def test_em_stops_early_and_the_elbo_vae_warms_up_on_incomplete_rows(monkeypatch):
    """EM on half-observed rows holds entries out (its maximum overfits there); the ELBO
    VAE's KL weight rises over ``kl_warmup`` epochs of steps, MIWAE's does not."""
    import pgm3d.experiments.imputation as imp

    s = ImputationSettings.quick(**{**TINY, "kl_warmup": 3, "batch_size": 100})
    x = torch.rand(250, 64)
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) < 0.5
    model = imp._em(imp.PPCA, x.double(), mask, 4, 50, s.em_holdout, 0)
    assert model.fit_info.best_iter is not None and model.fit_info.held_out_log_likelihood
    seen = []
    monkeypatch.setattr(imp, "_fit_deep", lambda m, *a, **kw: seen.append(kw) or m)
    table = imp.Table("t", x, None, "bernoulli")
    run = imp._Run(table, s, 0, torch.where(mask, x, torch.nan), mask, x, mask, "mcar")
    run.vae()
    run.vae("iwae")
    assert seen == [
        {"warmup_epochs": 3, "early": False},
        {"num_particles": s.iwae_particles, "early": False},
    ]
    seen.clear()
    s = ImputationSettings.quick(**{**TINY, "stop_early": ("vae-mwg", "miwae")})
    run = imp._Run(table, s, 0, torch.where(mask, x, torch.nan), mask, x, mask, "mcar")
    run.vae()
    run.vae("iwae")
    assert [kw["early"] for kw in seen] == [True, True]


def test_deep_models_stop_early_on_held_out_training_rows(monkeypatch):
    """Asked to stop early, a method holds out a tenth of the training rows (seeded); a
    VAEAC's get fixed masks of its training kind; fit sees the rest and the stopper; the KL
    warm-up counts their steps. Only VAEAC stops early by default (its authors' protocol)."""
    assert ImputationSettings().stop_early == ("vaeac",)
    import pgm3d.experiments.imputation as imp
    from pgm3d.inference import EarlyStopping
    from pgm3d.models import VAEAC

    s = ImputationSettings.quick(**{**TINY, "batch_size": 30})
    calls = []
    monkeypatch.setattr(imp, "fit", lambda m, x, *a, **kw: calls.append((x, kw)))
    x = torch.rand(100, 64)
    mask = torch.ones_like(x, dtype=torch.bool)
    vaeac = VAEAC(64, 2, (8,))
    noise = vaeac.masks(0.5)
    imp._fit_deep(vaeac, x, mask, "elbo", s, 0, early=True, warmup_epochs=2, context_noise=noise)
    rows, kw = calls[-1]
    (stopper,) = kw["callbacks"]
    assert isinstance(stopper, EarlyStopping) and stopper.every == s.check_every
    assert len(rows) == 90 and len(stopper.x) == 10 and kw["kl_warmup"] == 2 * 3
    assert kw["context"]["b"].shape == (90, 64) and not kw["context"]["b"].any()
    hidden = stopper.context["b"]
    assert hidden.shape == (10, 64) and 0.3 < float(hidden.double().mean()) < 0.7
    # the held-out rows are not trained on: together they are the training rows
    both = torch.cat([rows, stopper.x])
    assert torch.equal(both.sort(0).values, x.sort(0).values)
    imp._fit_deep(vaeac, x, mask, "elbo", s, 0)  # not asked to stop early: every row trains
    assert calls[-1][1]["callbacks"] == [] and len(calls[-1][0]) == 100
    imp._fit_deep(vaeac, x, mask, "elbo", imp.ImputationSettings.quick(validation=0.0), 0,
                  early=True)  # fmt: skip
    assert calls[-1][1]["callbacks"] == [] and len(calls[-1][0]) == 100


def test_the_command_line_runs_it(tmp_path):
    from pgm3d.cli import main

    argv = ["experiment", "imputation", "--quick", "--methods", "mean", "knn", "--patterns",
            "mcar", "--regimes", "missing", "--quiet", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 0
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(saved["results"]) == {"digits/missing/mcar"}


def test_over_seeds_gives_the_mean_and_its_standard_error():
    from pgm3d.tasks.results import over_seeds

    r = over_seeds([1.0, 2.0, 4.0])
    assert r["mean"] == pytest.approx(7 / 3)
    assert r["se"] == pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1) / np.sqrt(3))
    assert np.isnan(over_seeds([3.0])["se"])
    with pytest.raises(ValueError, match="at least one"):
        over_seeds([])


def test_each_vae_completion_is_charged_the_shared_training_time():
    """The VAE is trained once for MwG and importance; the second is charged its training."""
    from pgm3d.experiments.imputation import _Run

    s = ImputationSettings.quick(**TINY)
    table = load_imputation_data(s)[0]
    x = table.x[:40]
    mask = _masks(x[:8].shape, "mcar", table, 0.5, torch.Generator().manual_seed(0))
    run = _Run(table, s, 0, x[8:], torch.ones_like(x[8:], dtype=torch.bool), x[:8], mask, "mcar")
    run.impute("vae-mwg")
    assert run.reused_seconds == 0.0 and run._vae_seconds > 0
    run.impute("vae-importance")
    assert run.reused_seconds == run._vae_seconds
    run.impute("mean")
    assert run.reused_seconds == 0.0


def test_each_finished_cell_is_written_while_the_run_goes_on(tmp_path, monkeypatch):
    from pgm3d.experiments import imputation

    seen = []
    real = imputation._write

    def spy(out, seed, s, results, start, unfinished=0):
        metrics = real(out, seed, s, results, start, unfinished)
        if out is not None:
            table = (out / "table.md").read_text()
            seen.append((sorted(results), unfinished, "Partial: 1 cell(s)" in table))
        return metrics

    monkeypatch.setattr(imputation, "_write", spy)
    s = ImputationSettings.quick(datasets=("digits",), patterns=("mcar",),
                                 methods=("mean", "knn"), **{**TINY, "seeds": 1})  # fmt: skip
    out = tmp_path / "out"
    run_imputation(s, out, progress=False)
    assert seen == [
        (["digits/complete/mcar"], 1, True),
        (["digits/complete/mcar", "digits/missing/mcar"], 0, False),
    ]
    assert "unfinished_cells" not in json.loads((out / "metrics.json").read_text())


@pytest.mark.gpu
def test_the_deep_methods_train_and_impute_on_cuda(tmp_path):
    """The experiment's models follow the data onto the device (they were left on the CPU)."""
    deep = ("vae-mwg", "miwae", "vaeac")
    s = ImputationSettings.quick(**{**TINY, "seeds": 1}, regimes=("missing",),
                                 patterns=("quarters",), methods=deep)  # fmt: skip
    metrics = run_imputation(s, tmp_path, device="cuda", progress=False)
    row = metrics["results"]["digits/missing/quarters"]
    assert all(np.isfinite(r["mse"]) for r in row.values())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("trees", [0, 3], ids=["bayesian-ridge", "extra-trees"])
@pytest.mark.parametrize("train_missing", [0.0, 0.3], ids=["complete", "incomplete"])
def test_the_held_out_iterative_imputer_equals_fit_then_transform_and_keeps_no_estimator(
    trees, train_missing
):
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    from pgm3d.experiments._iterative import HeldOutIterativeImputer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 8)) @ rng.normal(size=(8, 8))  # correlated columns
    train, test = x[:90].copy(), x[90:].copy()
    train[rng.random(train.shape) < train_missing] = np.nan
    test[rng.random(test.shape) < 0.4] = np.nan
    est = ExtraTreesRegressor(n_estimators=trees, random_state=1) if trees else None
    kw = dict(estimator=est, max_iter=4, n_nearest_features=5, random_state=2)
    stock = IterativeImputer(**kw).fit(train).transform(test)
    ours = HeldOutIterativeImputer(**kw)
    np.testing.assert_array_equal(ours.fit_impute(train, test), stock)
    assert all(t.estimator is None for t in ours.imputation_sequence_)
    with pytest.raises(RuntimeError, match="fit_impute"):
        ours.transform(test)
    plain = HeldOutIterativeImputer(**kw).fit(train)  # a plain fit keeps them, as sklearn's
    np.testing.assert_array_equal(plain.transform(test), stock)


def test_the_held_out_iterative_imputer_refuses_posterior_draws_and_indicators():
    from pgm3d.experiments._iterative import HeldOutIterativeImputer

    x = np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, np.nan]])
    with pytest.raises(ValueError, match="sample_posterior"):
        HeldOutIterativeImputer(sample_posterior=True).fit_impute(x, x)
    with pytest.raises(ValueError, match="add_indicator"):
        HeldOutIterativeImputer(add_indicator=True).fit_impute(x, x)
