"""``pgm3d evaluate``: test log-likelihood and the posterior comparison table of a saved model."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from pgm3d.evaluation import evaluate_posteriors, log_likelihood_per_dim
from pgm3d.models import model_rows
from pgm3d.settings import check_run
from pgm3d.tasks._run import label, method_kwargs, methods_for, scored_mean
from pgm3d.tasks.complete import InferenceSettings, prepare
from pgm3d.tasks.results import write_results

__all__ = ["run_evaluate"]


def run_evaluate(
    settings: InferenceSettings,
    out: str | Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | None = None,
) -> dict:
    """Test log-likelihood and the posterior comparison table of the inference layer
    (:func:`~pgm3d.evaluation.evaluate_posteriors`: imputation error, distance to the exact
    posterior where there is one, PSIS k-hat, R-hat and ESS) on test data with hidden parts or
    entries. Writes ``metrics.json``, ``table.md``, each sampler's trace and rank plots
    (``trace_rank_METHOD.png``) and the k-hat of each method by row (``khat.png``).

    :param InferenceSettings settings: the saved model (``run``), its data and the methods.
    :returns: the metrics, also in ``out/metrics.json``.
    """
    check_run(seed, device)
    s = settings
    start = time.perf_counter()
    model, data, _split, test, x, kept, scored = prepare(s, seed, device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    full = model_rows(model, test)[1]
    torch.manual_seed(seed)
    ll, exact = log_likelihood_per_dim(
        model, x, full, existence=getattr(test, "existence", None), num_samples=s.iwae_samples
    )
    methods = methods_for(model, s.methods)
    options = {m: method_kwargs(m, s, seed, progress) for m in methods}
    table = evaluate_posteriors(model, x, kept, methods, x_true=x, options=options, scored=scored)
    metrics = {
        "model": label(model),
        "data": data.data,
        "rows": int(x.shape[0]),
        **scored_mean(ll),
        "log_likelihood": "exact" if exact else f"IWAE bound, K={s.iwae_samples}",
        "posteriors": table.rows,
        "seconds": time.perf_counter() - start,
    }
    unscored = metrics.get("rows_not_scored")
    text = (
        f"# Posterior approximations of {label(model)} on {data.data}\n\n"
        f"Test log-likelihood: {metrics['test_log_likelihood_nats_per_dim']:.4f} nats per "
        f"observed dimension ({metrics['log_likelihood']}), {x.shape[0]} rows"
        + (f" ({unscored} with no observed entry, not scored)" if unscored else "")
        + f". Below, each method infers the latents of the same rows with {int(scored.sum())} "
        "entries hidden.\n\n" + table.to_markdown()
    )
    write_results(out, metrics, text)
    _figures(table, out, label(model))
    return metrics


def _figures(table, out: Path, name: str) -> None:
    """The diagnostics a person would rather look at: each sampler's trace and rank plots, and
    every method's k-hat by row."""
    from pgm3d.viz.diagnostics import khat_strip, trace_and_rank

    for method, draws in table.draws.items():
        trace_and_rank(draws, out / f"trace_rank_{method}.png",
                       title=f"{name}: {method} chains (first rows and latents)")  # fmt: skip
    if table.khat_rows:
        khat_strip(table.khat_rows, out / "khat.png")
