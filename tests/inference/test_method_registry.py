"""Completion methods and objectives carry what the CLI, bench and the report need; a new
method is one file plus its registration; the per-pattern mean is a registered method."""

import pytest
import torch

from pgm3d.data import shapes
from pgm3d.inference import COMPLETION_METHODS, OBJECTIVES, Completion, complete
from pgm3d.inference.base import default_methods, method_options, method_unit
from pgm3d.models import PPCA, PatternGaussian


def test_every_completion_method_says_its_kind_and_unit():
    for name in COMPLETION_METHODS.names():
        info = COMPLETION_METHODS.info(name)
        assert info["kind"] in ("closed form", "sampler", "importance"), name
        assert method_unit(name)  # formats with the method's own defaults
    assert method_unit("mwg", {"chains": 1, "warmup": 10, "num_samples": 5}) == (
        "1 chain(s) x (10 warm-up + 5 draws)"
    )
    assert method_options("importance")["num_proposals"] == 1000
    assert COMPLETION_METHODS.info("exact")["needs_exact"] is True
    for name in OBJECTIVES.names():
        assert OBJECTIVES.info(name)["bound"]


def test_methods_run_by_default_leave_out_nuts():
    model = PPCA.fit(torch.randn(50, 6, dtype=torch.float64), 2)
    assert default_methods(model) == ["exact", "fca", "sca", "mean", "pseudo_gibbs", "mwg",
                                      "importance"]  # fmt: skip


def test_the_pattern_mean_is_the_exact_conditional_mean_of_the_pattern_gaussian():
    data = shapes("chairs", 60, seed=0, points_per_part=2)
    model = PatternGaussian.fit_shapes(data).double()
    x, mask = model.data(data.to(dtype=torch.float64))
    hidden = mask.clone()
    hidden[:, : model.point_dim : 3] = False  # hide every third point entry
    done = complete(model, x, hidden, "pattern-mean")
    idx = model.existence_distribution().pattern_index(x[:, model.point_dim :])
    missing = ~hidden[:, : model.point_dim] & mask[:, : model.point_dim]
    expected = model.loc[idx]
    torch.testing.assert_close(done.x[:, : model.point_dim][missing], expected[missing])
    assert torch.equal(done.x[hidden], x[hidden]) and done.z is None
    assert "pattern-mean" in default_methods(model)


def test_a_new_method_is_one_function_and_its_registration(tmp_path):
    from pgm3d.cli import main

    @COMPLETION_METHODS.register("zeros", kind="closed form", unit="closed form")
    def zeros(model, x, mask) -> Completion:
        return Completion(z=None, x=torch.where(mask, x, 0.0), mask=mask, method="zeros")

    try:
        out = tmp_path / "fit"
        assert (
            main(["fit", "--model", "ppca", "--data", "digits", "--quiet", "--out", str(out)]) == 0
        )
        done = tmp_path / "done"
        argv = ["complete", "--run", str(out), "--methods", "zeros", "exact", "--quiet"]
        assert main([*argv, "--out", str(done)]) == 0
        assert "| zeros |" in (done / "table.md").read_text()
    finally:
        COMPLETION_METHODS.unregister("zeros")
    with pytest.raises(ValueError, match="unknown completion method 'zeros'"):
        COMPLETION_METHODS["zeros"]


def test_a_method_for_any_model_runs_by_default_and_in_bench(tmp_path):
    from pgm3d.cli import main

    model = PPCA.fit(torch.randn(50, 6, dtype=torch.float64), 2)
    before = default_methods(model)

    @COMPLETION_METHODS.register("zeros", kind="closed form", unit="closed form", any_model=True)
    def zeros(model, x, mask) -> Completion:
        return Completion(z=None, x=torch.where(mask, x, 0.0), mask=mask, method="zeros")

    try:
        assert default_methods(model) == [*before, "zeros"]
        argv = ["bench", "--model", "ppca", "--quick", "--quiet", "--out", str(tmp_path)]
        assert main(argv) == 0
        assert "| complete zeros (closed form) |" in (tmp_path / "table.md").read_text()
    finally:
        COMPLETION_METHODS.unregister("zeros")
    assert default_methods(model) == before
