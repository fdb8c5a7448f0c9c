"""``pgm3d demo``: the whole idea end to end on embedded data, as one HTML report.

1. ``shapes/``: ShapeVAE, ShapeFA and the per-pattern Gaussian fitted to procedural chairs;
   test log-likelihoods; dropped parts completed with six back ends (ShapeVAE: Metropolis-
   within-Gibbs and pseudo-Gibbs; ShapeFA: exact, SCA, FCA; the diagonal model's exact
   conditional); samples, interpolations, normals, symmetry (:func:`run_shapes`).
2. ``posteriors-shapevae/`` and ``posteriors-shapefa/``: the posterior comparison table of the
   inference layer on the saved models (:func:`~pgm3d.tasks.evaluate.run_evaluate`):
   ShapeFA has an exact posterior to compare with, ShapeVAE does not.
3. ``missing-fa/``: the missing-data factor-analysis experiment on digits (thesis Tables
   4.1–4.2, :func:`run_missing_fa`).
4. ``metrics.json``, ``summary.md`` and ``report.html`` (images embedded) at the top.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from pgm3d._io import atomic_write_json, atomic_write_text
from pgm3d._log import stage
from pgm3d.evaluation.readings import reading
from pgm3d.experiments.missing_fa import MissingFASettings, run_missing_fa
from pgm3d.experiments.shapes import ShapesSettings, run_shapes
from pgm3d.settings import Settings, check_run, option
from pgm3d.tasks.complete import InferenceSettings, run_complete
from pgm3d.tasks.evaluate import run_evaluate

__all__ = ["DEMO", "DEMO_QUICK", "DemoSettings", "run_demo"]

#: sized to finish in about five minutes on 2 CPU cores
DEMO = {
    "shapes": {
        "n_train": 600,
        "n_test": 150,
        "points_per_part": 16,
        "epochs": 150,
        "lr": 1e-3,
        "kl_weight": 1.0,
        "batch_size": 100,
        "latent_dims": (16,),
        "fa_part_dim": 16,
        "completion_shapes": 200,
        "warmup": 50,
        "thin": 5,
        "num_samples": 10,
        "iwae_samples": 200,
        "ll_shapes": 100,
        "normal_shapes": 50,
        "samples": 300,
        "embed_epochs": 60,
        "linearity_shapes": 300,
    },
    "posteriors": {
        "rows": 60,
        "chains": 4,
        "warmup": 50,
        "thin": 5,
        "num_samples": 10,
        "num_proposals": 500,
        "iwae_samples": 200,
    },
}
#: about a minute: a smoke test of every step
DEMO_QUICK = {
    "shapes": ShapesSettings.QUICK,
    "posteriors": {
        "rows": 20,
        "chains": 2,
        "warmup": 10,
        "thin": 2,
        "num_samples": 5,
        "num_proposals": 100,
        "iwae_samples": 50,
    },
}

_CAPTIONS = {
    "samples_shapevae_{k}.png": "ShapeVAE samples: decoder means E[x | z, e] for z ~ p(z), "
    "e ~ p(e), coloured by part",
    "samples_shapefa_{k}.png": "ShapeFA samples (means W z + mu of the present parts)",
    "samples_diagonal.png": "Per-pattern diagonal Gaussian: pattern means",
    "interpolation.png": "ShapeVAE: decoding a straight line between two test shapes' posterior "
    "means",
    "embedding_2d.png": "A 2-D ShapeVAE's posterior means of the test shapes, by style",
    "latent_activity.png": "Activity Cov_x(E_q[z]) of each latent unit (Burda et al. 2016)",
    "symmetry_hist.png": "Distance of sampled shapes to their mirror images",
    "surface_0.png": "A surface reconstructed from a ShapeVAE sample's points and normals",
    "surface_1.png": "Another reconstructed surface",
}


def _posterior_methods(kind: str) -> list[str]:
    if kind == "shapefa":
        return ["exact", "fca", "sca", "mean", "pseudo_gibbs", "mwg", "importance"]
    return ["pseudo_gibbs", "mwg", "importance"]


#: the back ends drawn in each model's completion figure
_FIGURE_METHODS = {
    "shapevae": ["mwg", "pseudo_gibbs", "importance"],
    "shapefa": ["exact", "sca", "fca"],
}


def _summary(shapes: dict, post: dict, mfa: dict, k: int) -> tuple[dict, str]:
    ll = shapes["test_log_likelihood_nats_per_dim"]
    comp = shapes["completion_mse"]
    best = min(comp, key=comp.get)
    vae_rows = post["shapevae"]["posteriors"]
    fa_rows = post["shapefa"]["posteriors"]
    headline = {
        "ShapeFA test log-likelihood (nats/dim)": ll[f"ShapeFA-{k}"],
        "ShapeVAE test IWAE bound (nats/dim)": ll[f"ShapeVAE-{k}"],
        "best completion": best,
        "best completion MSE": comp[best],
    }
    lines = [
        "# pgm3d demo: summary\n",
        "| what | value |",
        "|---|---:|",
    ]
    lines += [
        f"| {key} | {v:.4g} |" if isinstance(v, float) else f"| {key} | {v} |"
        for key, v in headline.items()
    ]
    lines += [
        "",
        "## Completion of dropped chair parts, every back end\n",
        "| model · back end | MSE per dimension |",
        "|---|---:|",
    ]
    lines += [f"| {m} | {v:.4g} |" for m, v in sorted(comp.items(), key=lambda kv: kv[1])]
    lines += [
        "",
        "## How good each posterior approximation is (same rows, same hidden parts)\n",
        "Imputation errors are in the table above; here, the diagnostics (⚠: poor, see the "
        "posterior sections for what each value means).\n",
        "| model · back end | PSIS k-hat (median row) | max R-hat | min ESS |",
        "|---|---:|---:|---:|",
    ]
    for name, rows in (("ShapeVAE", vae_rows), ("ShapeFA", fa_rows)):
        for m, r in rows.items():
            cells = [_flagged(metric, r.get(metric)) for metric in ("khat", "max_rhat", "min_ess")]
            lines.append(f"| {name} · {m} | " + " | ".join(cells) + " |")
    lines += ["", "## Missing-data FA on digits (test imputation MSE x 100)\n"]
    lines += ["| mask pattern · method | MSE x 100 |", "|---|---:|"]
    for pattern, methods in mfa["test_mse_x100"].items():
        lines += [f"| {pattern} · {m} | {v:.3f} |" for m, v in methods.items()]
    return headline, "\n".join(lines) + "\n"


def _flagged(metric: str, value) -> str:
    """A diagnostic's value for the summary, ⚠ when poor; — where it does not apply."""
    if value is None or value != value:  # None or NaN
        return "—"
    poor, _ = reading(metric, value)
    return f"{value:.3g}" + (" ⚠" if poor else "")


@dataclass
class DemoSettings(Settings):
    """The settings of :func:`run_demo`: the sizes are :data:`DEMO` (about five minutes on 2
    CPU cores) or :data:`DEMO_QUICK`."""

    quick: bool = option(False, "smoke-test settings, about a minute: not the numbers to quote")


def run_demo(
    settings: DemoSettings | None = None,
    out: str | Path = "runs/demo",
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | None = None,
) -> dict:
    """Run the demo into ``out`` and return its metrics (also in ``out/metrics.json``)."""
    check_run(seed, device)
    quick = (settings or DemoSettings()).quick
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = DEMO_QUICK if quick else DEMO
    start, stages = time.perf_counter(), {}
    common = {"seed": seed, "device": device, "progress": progress}

    with stage("shapes: fit, likelihood, completion, figures", stages):
        shapes = run_shapes(ShapesSettings(**sizes["shapes"]), out / "shapes", **common)
    k = shapes["settings"]["latent_dims"][0]

    post = {}
    for kind in ("shapevae", "shapefa"):
        model = out / "shapes" / f"{kind}-{k}.pt"
        methods = _posterior_methods(kind)
        given = InferenceSettings(run=model, methods=methods, **sizes["posteriors"])
        with stage(f"posteriors of {kind}", stages):
            post[kind] = run_evaluate(given, out / f"posteriors-{kind}", **common)
        figure = given.replace(methods=_FIGURE_METHODS[kind], rows=4)
        with stage(f"completion figure of {kind}", stages):
            run_complete(figure, out / f"completion-{kind}", **common)

    with stage("missing-data FA on digits", stages):
        mfa = run_missing_fa(MissingFASettings.preset(quick), out / "missing-fa", **common)

    headline, summary = _summary(shapes, post, mfa, k)
    summary += "\n## Wall time\n\n| stage | seconds |\n|---|---:|\n"
    summary += "".join(f"| {s} | {v:.1f} |\n" for s, v in stages.items())
    seconds = time.perf_counter() - start
    summary += f"| **total (before the report)** | {seconds:.1f} |\n"
    atomic_write_text(out / "summary.md", summary)
    metrics = {
        "demo": "quick" if quick else "full",
        "seed": seed,
        "device": str(device),
        "headline": headline,
        "test_log_likelihood_nats_per_dim": shapes["test_log_likelihood_nats_per_dim"],
        "completion_mse": shapes["completion_mse"],
        "posteriors": {kind: m["posteriors"] for kind, m in post.items()},
        "missing_fa": {key: mfa[key] for key in ("test_mse_x100", "orderings")},
        "stage_seconds": stages,
        "seconds": seconds,
        "summary_file": str(out / "summary.md"),
    }
    atomic_write_json(out / "metrics.json", metrics)
    _layout(out, k, quick, shapes, seconds, headline)
    with stage("the report"):
        from pgm3d.viz.report import build_report  # matplotlib: only when drawing

        build_report(out)
    return metrics


def _layout(out: Path, k: int, quick: bool, shapes: dict, seconds: float, headline) -> None:
    s = shapes["settings"]
    captions = {name.format(k=k): text for name, text in _CAPTIONS.items()}
    layout = {
        "title": "pgm3d demo: one model declaration, interchangeable inference, measured",
        "intro": (
            f"Procedural chairs ({s['n_train']} training, {s['n_test']} test shapes, "
            f"{s['points_per_part']} points per part with normals, nine parts that may be "
            f"absent). Three models of them: **ShapeVAE** (latent size {k}, trained "
            f"{s['epochs']} epochs of the ELBO), **ShapeFA** (the two-layer factor analyser, "
            "fitted by EM) and a per-pattern diagonal Gaussian. Every model is a Pyro model/guide"
            " pair, so the same calls fit them, score them and complete their missing parts "
            "with any back end. Then the missing-data factor-analysis experiment on digits."
            + (" **Quick settings**: a smoke test, not the numbers to quote." if quick else "")
        ),
        "sections": [
            {
                "folder": ".",
                "heading": "Summary",
                "headline": [f"headline/{key}" for key in headline],
            },
            {
                "folder": "shapes",
                "heading": "Chairs: ShapeVAE vs ShapeFA vs the per-pattern Gaussian",
                "caption": "Completion with six back ends, test log-likelihood, normals, "
                "symmetry and latent activity (thesis §3.5).",
                "captions": captions,
            },
            {
                "folder": "posteriors-shapevae",
                "heading": "How good is each posterior approximation? ShapeVAE",
                "caption": "No exact posterior exists: compare imputation error, PSIS k-hat of "
                "the guide and the samplers' R-hat and ESS.",
                "figures": ["completion-shapevae/completion.png"],
                "captions": {
                    "completion-shapevae/completion.png": "Four test chairs with parts dropped "
                    "(second column), completed by three ShapeVAE back ends (posterior means)"
                },
            },
            {
                "folder": "posteriors-shapefa",
                "heading": "… and ShapeFA, where the exact posterior is known",
                "caption": "The closed forms and the samplers against the exact Gaussian "
                "posterior: distance of the completion to the exact conditional mean, KL.",
                "figures": ["completion-shapefa/completion.png"],
                "captions": {
                    "completion-shapefa/completion.png": "The same chairs completed by ShapeFA's "
                    "exact conditional and the SCA and FCA approximations"
                },
            },
            {
                "folder": "missing-fa",
                "heading": "Missing-data factor analysis on digits (thesis Tables 4.1–4.2)",
                "captions": {},
            },
        ],
        "footer": (
            f"pgm3d demo, seed {shapes['seed']}, {shapes['device']}; torch {torch.__version__} "
            f"on {platform.platform()}, {torch.get_num_threads()} threads; "
            f"{seconds:.0f} s. Rebuild with `pgm3d report {out}`."
        ),
    }
    from pgm3d.viz.report import LAYOUT_FILE

    (out / LAYOUT_FILE).write_text(json.dumps(layout, indent=2) + "\n")
