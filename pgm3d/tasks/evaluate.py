"""``pgm3d evaluate``: test log-likelihood and the posterior comparison table of a saved model."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from pgm3d._log import logger
from pgm3d.evaluation import evaluate_posteriors, log_likelihood_per_dim
from pgm3d.models import model_rows
from pgm3d.settings import check_run, option
from pgm3d.tasks._run import label, method_kwargs, methods_for, scored_mean
from pgm3d.tasks.complete import InferenceSettings, prepare
from pgm3d.tasks.results import write_results

__all__ = ["EvaluateSettings", "run_evaluate"]


@dataclass
class EvaluateSettings(InferenceSettings):
    """:class:`~pgm3d.tasks.complete.InferenceSettings` and simulation-based calibration."""

    sbc: int = option(
        0,
        "simulation-based calibration of each method (Talts et al. 2018) on this many rows "
        "simulated from the model, with the same share of entries hidden; 0: none",
    )


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
    if getattr(s, "sbc", 0):
        metrics["sbc_pvalue"] = _sbc(model, methods, options, s, kept, out, seed)
        text += "\n## Simulation-based calibration\n\n" + "\n".join(
            f"- {m}: p = {p:.3g} (uniform ranks {'not ' if p <= 0.01 else ''}rejected at 1%)"
            if p == p else f"- {m}: did not run"
            for m, p in metrics["sbc_pvalue"].items()
        ) + "\n"  # fmt: skip
    write_results(out, metrics, text)
    _figures(table, out, label(model))
    return metrics


def _sbc(model, methods, options, s, kept, out: Path, seed: int) -> dict:
    """SBC of each method on ``s.sbc`` simulated rows, hiding the test mask's share of
    entries at random; a histogram per method, and its Bonferroni p-value (NaN: the method
    or the model cannot be simulated and calibrated)."""
    from functools import partial

    from pgm3d.data.masks import random_mask
    from pgm3d.evaluation import sbc
    from pgm3d.viz.diagnostics import sbc_histograms

    share = float((~kept).double().mean())
    hide = partial(random_mask, p_missing=share) if share > 0 else None
    pvalues = {}
    for method in methods:
        try:
            given = {k: v for k, v in options[method].items() if k != "progress"}
            result = sbc(model, method, num_simulations=s.sbc, mask_sampler=hide,
                         generator=torch.Generator().manual_seed(seed + 11), **given)  # fmt: skip
        except (ValueError, TypeError, NotImplementedError) as e:
            logger.info("SBC of %s did not run: %s", method, e)
            pvalues[method] = float("nan")
            continue
        pvalues[method] = float(result.pvalue)
        sbc_histograms(result, out / f"sbc_{method}.png", title=f"SBC of {method}")
    return pvalues


def _figures(table, out: Path, name: str) -> None:
    """The diagnostics a person would rather look at: each sampler's trace and rank plots, and
    every method's k-hat by row."""
    from pgm3d.viz.diagnostics import khat_strip, trace_and_rank

    for method, draws in table.draws.items():
        trace_and_rank(draws, out / f"trace_rank_{method}.png",
                       title=f"{name}: {method} chains (first rows and latents)")  # fmt: skip
    if table.khat_rows:
        khat_strip(table.khat_rows, out / "khat.png")
