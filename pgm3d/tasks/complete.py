"""``pgm3d complete``: hide parts or entries of test data and fill them in with each back end."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pgm3d._progress import progress_bar
from pgm3d.data.masks import DROPS
from pgm3d.evaluation import imputation_mse
from pgm3d.inference import COMPLETION_METHODS, complete
from pgm3d.models import MODELS, model_rows
from pgm3d.settings import check_run, option
from pgm3d.tasks._run import (
    RunDataSettings,
    SavedRunSettings,
    hide,
    label,
    load_run,
    method_kwargs,
    methods_for,
    run_data,
)
from pgm3d.tasks.results import markdown_table, write_results

__all__ = ["InferenceSettings", "prepare", "run_complete"]


@dataclass
class InferenceSettings(RunDataSettings, SavedRunSettings):
    """The settings of :func:`run_complete` and :func:`~pgm3d.tasks.evaluate.run_evaluate`:
    the saved model, its data (the run's unless given), what to hide and the back ends with
    their options (each method takes those among its keyword arguments)."""

    methods: tuple[str, ...] | None = option(
        None,
        "completion back ends",
        kind=str,
        many=True,
        choices=COMPLETION_METHODS,
        shown="all that apply to the model",
    )
    drop: str | None = option(
        None,
        "what to hide: " + "; ".join(f"{k}, {v}" for k, v in DROPS.items()),
        kind=str,
        choices=list(DROPS),
        shown="parts for shapes, half for voxels, random for rows",
    )
    p_missing: float | None = option(
        None, "the chance a part or entry is hidden", kind=float, shown="parts 0.25, entries 0.5"
    )
    rows: int = option(100, "test rows")
    chains: int = option(4, "sampler chains")
    warmup: int = option(100, "sampler warm-up steps")
    thin: int = option(10, "keep every n-th draw")
    num_samples: int = option(25, "draws per chain")
    num_proposals: int = option(1000, "importance proposals")
    iwae_samples: int = option(500, "K of the test IWAE bound")
    figure_rows: int = option(4, "test rows in the figure")


def prepare(s: InferenceSettings, seed: int, device):
    """The saved model, its data split, the test set, its rows, and the mask with entries
    hidden and the hidden entries (:func:`~pgm3d.tasks._run.hide`)."""
    model, info = load_run(s.run, device, s.trust_file)
    if not model.completion_methods:
        takers = [n for n in MODELS if MODELS[n].completion_methods]
        raise ValueError(
            f"no completion back end applies to {label(model)}; complete and evaluate "
            f"take {', '.join(takers)} models"
        )
    data = run_data(info, s)
    split = data.open(info.get("seed", seed))  # the run's seed drew its data
    test = split.test[: s.rows]
    x, mask = model_rows(model, test)
    kept, hidden = hide(model, split, test, x, mask, drop=s.drop, p_missing=s.p_missing, seed=seed)
    return model, data, split, test, x, kept, hidden


def run_complete(
    settings: InferenceSettings,
    out: str | Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | None = None,
) -> dict:
    """Hide parts (shapes) or entries (rows) of test data and fill them in with each method.

    Writes ``completions.npz`` (truth, mask, one completion per method), ``metrics.json``
    (imputation MSE on the hidden entries, its standard error and the wall time per method),
    ``table.md`` and ``completion.png``.

    :param InferenceSettings settings: the saved model (``run``), its data and the methods.
    :returns: the metrics, also in ``out/metrics.json``.
    """
    check_run(seed, device)
    s = settings
    model, data, split, test, x, kept, scored = prepare(s, seed, device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results, filled = {}, {}
    for method in progress_bar(methods_for(model, s.methods), desc="complete", progress=progress):
        t = time.perf_counter()
        with torch.no_grad():
            done = complete(model, x, kept, method, **method_kwargs(method, s, seed, progress))
        err = imputation_mse(x.double(), done.x.double(), ~scored)
        filled[method] = done.x.detach()
        results[method] = {"mse": err.mean, "se": err.stderr, "seconds": time.perf_counter() - t}
    np.savez_compressed(
        out / "completions.npz",
        x=x.cpu().numpy(),
        mask=kept.cpu().numpy(),
        **{m: v.cpu().numpy() for m, v in filled.items()},
    )
    from pgm3d.viz.runs import completion_figure  # matplotlib: only when drawing

    completion_figure(
        out / "completion.png",
        test,
        x,
        kept,
        filled,
        image_shape=split.image_shape,
        rows=s.figure_rows,
    )
    metrics = {
        "model": label(model),
        "data": data.data,
        "rows": int(x.shape[0]),
        "hidden_entries": int(scored.sum()),
        "completion_mse": {m: r["mse"] for m, r in results.items()},
        "completion": results,
    }
    table = markdown_table(
        ("method", "imputation MSE", "± s.e.", "seconds"),
        [
            (m, f"{r['mse']:.4g}", f"{r['se']:.2g}", f"{r['seconds']:.2f}")
            for m, r in results.items()
        ],
        title=f"Completion of hidden entries: {label(model)} on {data.data}",
    )
    write_results(out, metrics, table)
    return metrics
