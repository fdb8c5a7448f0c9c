"""Thesis ch. 3 (Nash & Williams 2017, §3.5): ShapeVAE against ShapeFA and the per-pattern
diagonal Gaussian on part-segmented shapes.

Protocol, per latent size (8 and 64 by default):

1. train ShapeVAE (ELBO with KL weight ``α``, Adam) for the full number of epochs, scoring a
   validation set every few epochs and keeping the parameters of the best validation bound
   (§3.5.1: early stopping for the quantitative results, the full run for samples); fit
   ShapeFA greedily and the per-pattern diagonal Gaussian; on procedural shapes of one family
   (points and normals), whose distance from linear is measured first
   (:func:`~pgm3d.evaluation.family_linearity`);
2. **test log-likelihood** in nats per observed dimension (steps 2-4 and 6 use the early-stopped
   ShapeVAE, step 5 and the figures the fully trained one): ShapeVAE by the importance-weighted
   bound (Burda et al. 2016) with ``K`` samples, ShapeFA and the diagonal Gaussian exactly
   (Table 3.2);
3. **shape completion**: test shapes drawn with replacement, each present part dropped with
   probability 0.25 (redrawn until some but not all are dropped), completed by ShapeVAE with
   Metropolis-within-Gibbs and pseudo-Gibbs (100 burn-in sweeps, thin 10, 25 samples) and by
   ShapeFA with the exact posterior, SCA and FCA; the diagonal Gaussian's pattern mean is its
   exact conditional; MSE per dimension on the dropped entries (Table 3.1);
4. **normals from points**: every normal masked, completed by each model, against a local plane
   fit (PCA of the 10 nearest neighbours); mean angular error in degrees;
5. **symmetry** of 1,000 samples per model, of their means ``E[x | z, e]`` (the shapes without
   per-coordinate observation noise; these go in the histogram and the comparison) and of
   the training data;
6. **latent activity** per unit (variance over the test set of the posterior mean, Burda et al.)
   and the number of units carrying 90% of it; a 2-D ShapeVAE's embedding coloured by style;
   interpolation strips; single-unit traversals (Fig. 3.10); grids of samples; surfaces
   reconstructed from two ShapeVAE samples.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pgm3d.data import FAMILIES, drop_parts, shapes
from pgm3d.evaluation import (
    active_units,
    family_linearity,
    imputation_mse,
    log_likelihood_per_dim,
    normal_angles,
    pca_normals,
    reconstruct_surface,
    symmetry_score,
)
from pgm3d.inference import EarlyStopping, complete, fit
from pgm3d.models import PatternGaussian, ShapeFA, ShapeVAE, model_rows
from pgm3d.saving import save
from pgm3d.settings import Settings, check_run, option
from pgm3d.tasks.results import markdown_table, write_results

__all__ = ["THESIS_SETTINGS", "ShapesSettings", "run_shapes"]

#: ShapeVAE training as in the thesis: Adam at 1e-4, KL weight 100, sigma^2_min 1e-3
THESIS_SETTINGS = {"lr": 1e-4, "kl_weight": 100.0, "min_variance": 1e-3, "epochs": 500}


@dataclass
class ShapesSettings(Settings):
    """The settings of :func:`run_shapes`: by default the thesis's (§3.5); :meth:`quick` is a
    smoke test of about a minute on a laptop CPU."""

    QUICK = {
        "n_train": 200,
        "n_test": 40,
        "points_per_part": 8,
        "epochs": 40,
        "lr": 1e-3,
        "kl_weight": 1.0,
        "batch_size": 50,
        "fa_part_dim": 4,
        "completion_shapes": 40,
        "warmup": 10,
        "thin": 2,
        "num_samples": 5,
        "iwae_samples": 50,
        "ll_shapes": 40,
        "normal_shapes": 20,
        "samples": 200,
        "latent_dims": (8,),
        "embed_epochs": 20,
        "n_valid": 20,
        "linearity_shapes": 100,
    }

    family: str = option("chairs", "the shape family", choices=FAMILIES.names)
    latent_dims: tuple[int, ...] = option((8, 64), "latent sizes compared", many=True)
    n_train: int = option(1000, "training shapes")
    n_test: int = option(250, "test shapes")
    n_valid: int = option(
        100, "validation shapes; results use the best validation bound's parameters (0: last)"
    )
    check_every: int = option(5, "epochs between validation checks")
    linearity_shapes: int = option(1000, "shapes per style for the family's linearity")
    points_per_part: int = option(32, "points per part")
    epochs: int = option(500, "ShapeVAE epochs")
    lr: float = option(1e-4, "Adam learning rate")
    kl_weight: float = option(100.0, "KL weight alpha")
    kl_warmup: int = option(0, "steps over which alpha rises linearly from 0 (0: none)")
    batch_size: int = option(100, "rows per step")
    fa_part_dim: int = option(128, "ShapeFA factors per part (the thesis's)")
    completion_shapes: int = option(1000, "test shapes completed")
    warmup: int = option(100, "sampler burn-in sweeps")
    thin: int = option(10, "keep every n-th sweep")
    num_samples: int = option(25, "samples per completion")
    iwae_samples: int = option(10000, "K of the IWAE bound (the thesis's)")
    ll_shapes: int = option(100, "test shapes for the likelihood")
    normal_shapes: int = option(100, "test shapes for normals from points")
    samples: int = option(1000, "samples per model for symmetry")
    embed_epochs: int = option(200, "epochs of the 2-D ShapeVAE for the embedding figure")
    alpha_radius: float = option(0.12, "alpha-shape radius of the surfaces figure (the thesis's)")


def _units_for(activity: torch.Tensor, fraction: float = 0.9) -> int:
    a = activity.sort(descending=True).values
    share = a.cumsum(0) / a.sum().clamp_min(1e-30)
    return int((share < fraction).sum()) + 1


class _Run:
    """State shared by the steps of one run."""

    def __init__(self, family, s, seed, device, progress):
        self.s, self.seed, self.device, self.progress = s, seed, torch.device(device), progress
        ppp = s.points_per_part
        self.train = shapes(family, s.n_train, seed=seed, points_per_part=ppp).to(self.device)
        self.test = shapes(family, s.n_test, seed=seed + 1, points_per_part=ppp).to(self.device)
        self.valid = (
            shapes(family, s.n_valid, seed=seed + 2, points_per_part=ppp).to(self.device)
            if s.n_valid
            else None
        )
        self.results: dict = {
            "log_likelihood": {},
            "completion": {},
            "normals": {},
            "symmetry": {},
            "activity": {},
            "validation": {},
        }
        self.models: dict = {}

    def gen(self, offset: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1000 + offset)

    # -- models ------------------------------------------------------------------------------
    def fit_vae(self, latent_dim: int, epochs: int, validate: bool = True):
        """Train a ShapeVAE for ``epochs``; returns ``(best, last)``: the parameters of the best
        validation bound (the last ones without a validation set) and the last ones."""
        s = self.s
        torch.manual_seed(self.seed)
        model = ShapeVAE.from_shapes(
            self.train, latent_dim, min_variance=THESIS_SETTINGS["min_variance"]
        ).to(self.device)
        x, mask = model.data(self.train)
        stopper = None
        if validate and self.valid is not None:
            xv, mv = model.data(self.valid)
            stopper = EarlyStopping(model, xv, mv, every=min(s.check_every, epochs),
                                    num_samples=10, seed=self.seed, stop=False)  # fmt: skip
        history = fit(
            model,
            x,
            "elbo",
            mask=mask,
            kl_weight=s.kl_weight,
            kl_warmup=s.kl_warmup,
            epochs=epochs,
            batch_size=s.batch_size,
            lr=s.lr,
            seed=self.seed,
            progress=self.progress,
            callbacks=[stopper] if stopper else [],
        )
        model.history = history
        if stopper is None:
            return model.eval(), model
        last = copy.deepcopy(model).eval()
        stopper.restore()
        self.results["validation"][f"ShapeVAE-{latent_dim}"] = {
            "best_epoch": stopper.best_epoch,
            "best": stopper.best,
            "curve": stopper.scores,
        }
        return model.eval(), last

    def fit_fa(self, latent_dim: int) -> ShapeFA:
        import warnings

        with warnings.catch_warnings():  # EM's convergence warnings are reported in metrics
            warnings.simplefilter("ignore", RuntimeWarning)
            return ShapeFA.fit_shapes(
                self.train.to(dtype=torch.float64),
                latent_dim,
                self.s.fa_part_dim,
                progress=False,
            )

    # -- evaluations --------------------------------------------------------------------------
    def log_likelihoods(self, name, model):
        test = self.test[: self.s.ll_shapes]
        x, mask = model_rows(model, test)
        torch.manual_seed(self.seed)
        ll, _ = log_likelihood_per_dim(
            model, x, mask, existence=test.existence, num_samples=self.s.iwae_samples
        )
        self.results["log_likelihood"][name] = float(ll.nanmean())  # NaN rows: nothing seen

    def completion_rows(self):
        """Test shapes drawn with replacement and the parts dropped from each."""
        g = self.gen(1)
        idx = torch.randint(len(self.test), (self.s.completion_shapes,), generator=g)
        chosen = self.test[idx.to(self.device)]
        dropped = drop_parts(chosen.existence.cpu(), 0.25, generator=g).to(self.device)
        return chosen, dropped

    def complete_all(self, name, model, chosen, dropped):
        s = self.s
        entries = dropped[:, model.part_of_entry]  # the dropped parts' entries
        if isinstance(model, ShapeVAE):
            x, mask = model.data(chosen)
            point_mask = mask[:, : model.point_dim] & ~entries
            mask = torch.cat([point_mask, mask[:, model.point_dim :]], -1)
            methods = ("mwg", "pseudo_gibbs")
            opts = {
                "chains": 1,
                "warmup": s.warmup,
                "thin": s.thin,
                "num_samples": s.num_samples,
                "seed": self.seed,
                "progress": self.progress,
            }
        else:
            x, mask = model.data(chosen.to(dtype=torch.float64))
            if isinstance(model, ShapeFA):
                mask = mask & ~entries
                methods, opts = ("exact", "sca", "fca"), {}
            else:
                point_mask = mask[:, : model.point_dim] & ~entries
                mask = torch.cat([point_mask, mask[:, model.point_dim :]], -1)
                methods, opts = ("pattern-mean",), {}
        d = x.shape[-1] if isinstance(model, ShapeFA) else model.point_dim
        scored = torch.zeros_like(mask)
        scored[:, :d] = entries & chosen.flat_mask().to(x.device)
        for method in methods:
            t = time.perf_counter()
            with torch.no_grad():
                filled = complete(model, x, mask, method, **opts).x
            err = imputation_mse(x.double(), filled.double(), ~scored)
            self.results["completion"][f"{name} {method}"] = {
                "mse": err.mean,
                "se": err.stderr,
                "seconds": time.perf_counter() - t,
            }

    def normals(self, name, model, test):
        s = self.s
        if isinstance(model, ShapeVAE):
            x, mask = model.data(test)
            hide = torch.cat(
                [
                    (torch.arange(model.point_dim, device=x.device) % 6 < 3).expand_as(
                        mask[:, : model.point_dim]
                    ),
                    torch.ones_like(mask[:, model.point_dim :]),
                ],
                -1,
            )
            with torch.no_grad():
                r = complete(
                    model,
                    x,
                    mask & hide,
                    "mwg",
                    chains=1,
                    warmup=s.warmup // 2,
                    thin=2,
                    num_samples=10,
                    seed=self.seed,
                    progress=self.progress,
                )
            est = r.x[:, : model.point_dim].detach()
        elif isinstance(model, ShapeFA):
            x, mask = model.data(test.to(dtype=torch.float64))
            hide = (torch.arange(model.data_dim, device=x.device) % 6 < 3).expand_as(mask)
            est = complete(model, x, mask & hide, "exact").x
        else:
            x, mask = model.data(test.to(dtype=torch.float64))
            idx = model.existence_distribution().pattern_index(x[:, model.point_dim :])
            est = model.loc[idx]
        est = est.detach().reshape(len(test), -1, 6)[..., 3:].to(test.normals)
        pm = test.point_mask()
        self.results["normals"][name] = {
            "oriented": float(normal_angles(est, test.normals, pm, oriented=True).mean()),
            "unoriented": float(normal_angles(est, test.normals, pm, oriented=False).mean()),
        }

    def symmetry(self, name, model, seed: int) -> torch.Tensor:
        """Symmetry of samples (with observation noise) and of sampled means (without), both
        drawn with the same generator seed (:meth:`~pgm3d.models.ShapeVAE.sample_shapes`)."""
        out = {}
        for key, mean in (("samples", False), ("means", True)):
            n = self.s.samples
            parts = model.sample_shapes(n, generator=self.gen(seed), mean=mean)
            out[key] = symmetry_score(parts["points"].double(), parts["point_mask"])
        self.results["symmetry"][name] = {
            "mean": float(out["means"].mean()),
            "median": float(out["means"].median()),
            "samples mean": float(out["samples"].mean()),
        }
        return out["means"]


def run_shapes(
    settings: ShapesSettings | None = None,
    out: str | Path | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
) -> dict:
    """Run the chapter-3 evaluation on one shape family and write its tables and figures.

    :param ShapesSettings settings: the family and sizes (default: the thesis's;
        ``ShapesSettings.quick()`` for a smoke test).
    :param out: output folder for ``table.md``, ``results.json``, ``metrics.json`` and PNGs.
    :returns: the metrics dictionary also written to ``metrics.json``.
    """
    start = time.perf_counter()
    check_run(seed, device)
    s = settings or ShapesSettings()
    family = s.family
    run = _Run(family, s, seed, device, progress)
    if family in FAMILIES:
        run.results["linearity"] = family_linearity(
            family, s.linearity_shapes, seed=seed, points_per_part=min(s.points_per_part, 16)
        )
    chosen, dropped = run.completion_rows()
    pattern = PatternGaussian.fit_shapes(run.train.to(dtype=torch.float64))
    run.log_likelihoods("Diagonal", pattern)
    run.complete_all("Diagonal", pattern, chosen.to(dtype=torch.float64), dropped)
    normal_test = run.test[: s.normal_shapes]
    run.normals("Diagonal", pattern, normal_test)
    pca = pca_normals(normal_test.points, normal_test.point_mask())
    unoriented = normal_angles(pca, normal_test.normals, normal_test.point_mask(), oriented=False)
    run.results["pca_normals"] = float(unoriented.mean())
    train_sym = symmetry_score(run.train.points.double(), run.train.point_mask())
    run.results["symmetry"]["training data"] = {
        "mean": float(train_sym.mean()),
        "median": float(train_sym.median()),
        "samples mean": float(train_sym.mean()),
    }
    sym = {"Diagonal": run.symmetry("Diagonal", pattern, 2)}
    timing = {}
    for k in s.latent_dims:
        t = time.perf_counter()
        vae, last = run.fit_vae(k, s.epochs)
        timing[f"ShapeVAE-{k} training s"] = time.perf_counter() - t
        fa = run.fit_fa(k)
        for name, model in ((f"ShapeVAE-{k}", vae), (f"ShapeFA-{k}", fa)):
            run.log_likelihoods(name, model)
            run.complete_all(
                name, model, chosen.to(dtype=torch.float64) if model is fa else chosen, dropped
            )
            run.normals(name, model, normal_test)
        sym[f"ShapeVAE-{k}"] = run.symmetry(f"ShapeVAE-{k}", last, 3)
        sym[f"ShapeFA-{k}"] = run.symmetry(f"ShapeFA-{k}", fa, 4)
        x, mask = vae.data(run.test)
        act = active_units(vae, x, mask).activity.cpu()
        xf, mf = fa.data(run.test.to(dtype=torch.float64))
        fa_act = fa.exact_posterior(xf, mf).mean[:, :k].var(0).cpu()
        run.results["activity"][f"ShapeVAE-{k}"] = {
            "activity": act.tolist(),
            "units_for_90%": _units_for(act),
        }
        run.results["activity"][f"ShapeFA-{k}"] = {
            "activity": fa_act.tolist(),
            "units_for_90%": _units_for(fa_act),
        }
        fa_means = fa.sample_shapes(s.samples, generator=run.gen(4), mean=True)
        run.models[k] = (vae, fa, fa_means, last)
    embed, _ = run.fit_vae(2, s.embed_epochs, validate=False)
    metrics = _metrics(family, s, seed, run, timing, start)
    if out is not None:
        _write(Path(out), family, s, run, embed, sym, pattern, metrics)
    return metrics


def _metrics(family, s, seed, run, timing, start) -> dict:
    r = run.results
    ll, comp = r["log_likelihood"], r["completion"]
    best = lambda prefix: min((v["mse"], k) for k, v in comp.items() if k.startswith(prefix + " "))  # noqa: E731
    checks = {}
    for k in s.latent_dims:
        checks[f"ShapeVAE-{k} completes better than ShapeFA-{k}"] = (
            best(f"ShapeVAE-{k}")[0] < best(f"ShapeFA-{k}")[0]
        )
        checks[f"ShapeFA-{k} log-likelihood above ShapeVAE-{k} IWAE bound"] = (
            ll[f"ShapeFA-{k}"] > ll[f"ShapeVAE-{k}"]
        )
        checks[f"ShapeVAE-{k} samples more symmetric than ShapeFA-{k}"] = (
            r["symmetry"][f"ShapeVAE-{k}"]["mean"] < r["symmetry"][f"ShapeFA-{k}"]["mean"]
        )
    return {
        "experiment": "shapes",
        "family": family,
        "seed": seed,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in s.as_dict().items()},
        "device": str(run.device),
        "test_log_likelihood_nats_per_dim": ll,
        "completion_mse": {k: v["mse"] for k, v in comp.items()},
        "normals_angular_error_deg": r["normals"],
        "symmetry_mean": {k: v["mean"] for k, v in r["symmetry"].items()},
        "units_for_90%_activity": {k: v["units_for_90%"] for k, v in r["activity"].items()},
        "thesis_findings_hold": checks,
        "validation_best_epoch": {k: v["best_epoch"] for k, v in r["validation"].items()},
        "family_nonlinear_residual": {
            k: v["nonlinear_residual"] for k, v in r.get("linearity", {}).items()
        },
        **timing,
        "seconds": time.perf_counter() - start,
    }


def _linearity_section(linearity) -> str:
    if not linearity:
        return ""
    rows = [
        (style, str(v["parameters"]), f"{100 * v['nonlinear_residual']:.2f}%",
         str(v["components_99"]))
        for style, v in linearity.items()
    ]  # fmt: skip
    return (
        "\n## How far the family is from linear (per style)\n\n"
        "The variance an affine function of the generator's parameters leaves unexplained "
        "(0 for a family linear in its parameters), and the principal components that carry "
        "99% of the variance.\n\n"
        + markdown_table(("style", "parameters", "nonlinear residual", "PCs for 99%"), rows)
    )


def _validation_section(validation, s) -> str:
    if not validation:
        return "\nNo validation set: the results use the last parameters.\n"
    rows = [(k, str(v["best_epoch"]), f"{v['best']:.2f}") for k, v in validation.items()]
    return (
        f"\n## Early stopping (§3.5.1): validation bound (IWAE, K = 10) every {s.check_every} "
        "epochs; the tables below use the best parameters, samples and figures the last\n\n"
        + markdown_table(("model", "best epoch", "validation bound, nats per shape"), rows)
    )


def _pairs_table(rows: list[tuple[str, str]], header: tuple[str, str]) -> str:
    return markdown_table(header, rows)


def _write(out, family, s, run, embed, sym, pattern, metrics):
    out.mkdir(parents=True, exist_ok=True)
    # the fitted models, reloadable with pgm3d.load and usable by `pgm3d complete --run FILE`
    data = {
        "data": family,
        "n_train": s.n_train,
        "n_test": s.n_test,
        "points_per_part": s.points_per_part,
        "seed": run.seed,
    }
    for k, (vae, fa, _, _) in run.models.items():
        save(vae, out / f"shapevae-{k}.pt", {"model": "shapevae", "latent_dim": k, **data})
        save(fa, out / f"shapefa-{k}.pt", {"model": "shapefa", "latent_dim": k, **data})
    r = run.results
    comp = r["completion"]
    md = [
        f"# ShapeVAE, ShapeFA and the per-pattern Gaussian on procedural {family}\n",
        f"{s.n_train} training, {s.n_valid} validation and {s.n_test} test shapes, "
        f"{s.points_per_part} points per part with normals; ShapeVAE trained "
        f"{s.epochs} epochs (Adam {s.lr}, KL weight {s.kl_weight}"
        + (f" reached over {s.kl_warmup} steps" if s.kl_warmup else "")
        + "); ShapeFA part size "
        f"{s.fa_part_dim}.\n",
        _linearity_section(r.get("linearity")),
        _validation_section(r["validation"], s),
        "\n## Table 3.1 — completion of dropped parts (MSE per dimension x 10^3, ± s.e.)\n\n",
        _pairs_table(
            [(k, f"{1e3 * v['mse']:.3f} ± {1e3 * v['se']:.3f}") for k, v in comp.items()],
            ("model / method", "MSE x 10^3"),
        ),
        "\n## Table 3.2 — test log-likelihood (nats per dimension; "
        f"ShapeVAE: IWAE bound, K = {s.iwae_samples})\n\n",
        markdown_table(
            ("model", "nats/dim"), [(k, f"{v:.3f}") for k, v in r["log_likelihood"].items()]
        ),
        "\n## Normals completed from points (mean angular error, degrees)\n\n",
        _pairs_table(
            [
                (k, f"{v['oriented']:.1f} (unoriented {v['unoriented']:.1f})")
                for k, v in r["normals"].items()
            ]
            + [
                (
                    "plane fit, k = 10 (PCA)",
                    f"unoriented {r['pca_normals']:.1f}" if "pca_normals" in r else "",
                )
            ],
            ("model", "error"),
        ),
        "\n## Symmetry score (mean distance to the mirrored shape) of sampled means "
        "E[x | z, e], and of samples with observation noise\n\n",
        _pairs_table(
            [
                (k, f"{v['mean']:.4f} (samples {v['samples mean']:.4f})")
                for k, v in r["symmetry"].items()
            ],
            ("model", "means (samples)"),
        ),
        "\n## Latent activity: units carrying 90% of the activity\n\n",
        _pairs_table(
            [(k, str(v["units_for_90%"])) for k, v in r["activity"].items()], ("model", "units")
        ),
        "\n## The thesis's findings on our data\n\n",
        "\n".join(
            f"- {k}: {'holds' if v else 'does not hold'}"
            for k, v in metrics["thesis_findings_hold"].items()
        )
        + "\n",
    ]
    write_results(out, metrics, "".join(md), results=r)
    _figures(out, family, run, embed, sym, pattern)


def _figures(out, family, run, embed, sym, pattern):
    from matplotlib.figure import Figure

    from pgm3d.viz import interpolation_strip, render_shapes
    from pgm3d.viz.charts import curves

    pop = run.train.part_of_point

    def draw(parts, path, title, n=16, fn=render_shapes):
        fn(
            parts["points"][:n],
            out / path,
            normals=parts["normals"][:n],
            part_of_point=pop,
            masks=parts["point_mask"][:n],
            title=title,
        )

    # samples of every model
    for k, (_, _, fa_rows, vae) in run.models.items():
        v = vae.to_points(vae.sample(16, generator=run.gen(5), mean=True))
        draw(v, f"samples_shapevae_{k}.png", f"ShapeVAE-{k} samples (means E[x | z, e])")
        draw(fa_rows, f"samples_shapefa_{k}.png", f"ShapeFA-{k} samples (means W z + mu)")
    d = pattern.to_points(pattern.sample(16, generator=run.gen(6), mean=True))
    draw(d, "samples_diagonal.png", "Per-pattern diagonal Gaussian (pattern means)")
    # symmetry histogram
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    # the axis spans the bulk of every series (0.5-99.5%): a few far samples would otherwise
    # squeeze the histograms into one bin; how many fall outside is in the legend
    pooled = np.concatenate([score.cpu().numpy() for score in sym.values()])
    lo, hi = np.quantile(pooled, [0.005, 0.995])
    bins = np.linspace(lo, hi, 41)
    for name, score in sym.items():
        v = score.cpu().numpy()
        outside = int(((v < lo) | (v > hi)).sum())
        label = name + (f" ({outside} beyond the axis)" if outside else "")
        ax.hist(v, bins=bins, histtype="step", label=label, density=True)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("symmetry score")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "symmetry_hist.png", dpi=110)
    # latent activity
    activity = {
        name: sorted(a["activity"], reverse=True)
        for name, a in run.results["activity"].items()
        if name.startswith("ShapeVAE")
    }
    if run.results["validation"]:
        curves(
            {k: [v for _, v in r["curve"]] for k, r in run.results["validation"].items()},
            out / "validation.png",
            xlabel=f"check (every {run.s.check_every} epochs)",
            ylabel="validation bound (nats per shape)",
            x_from=1,
        )
    curves(activity, out / "latent_activity.png", xlabel="unit (sorted)", ylabel="activity",
           x_from=0, log=True, markers=True)  # fmt: skip
    # 2-D embedding coloured by style
    x, mask = embed.data(run.test)
    with torch.no_grad():
        z = embed.encode(x, mask).mean.cpu()
    fig = Figure(figsize=(4.5, 4))
    ax = fig.subplots()
    for k, name in enumerate(run.test.style_names):
        sel = run.test.style.cpu() == k
        ax.scatter(z[sel, 0], z[sel, 1], s=8, label=name)
    ax.legend(fontsize=7)
    ax.set_title(f"2-D ShapeVAE embedding of test {family}")
    fig.tight_layout()
    fig.savefig(out / "embedding_2d.png", dpi=110)
    # interpolation between two test shapes of different styles
    # figures show the fully trained model of the largest latent size, as the thesis's samples
    k = max(run.models)
    vae = run.models[k][3]
    styles = run.test.style
    a = 0
    b = int((styles != styles[a]).nonzero()[0]) if (styles != styles[a]).any() else 1
    x, mask = vae.data(run.test[torch.tensor([a, b], device=run.device)])
    with torch.no_grad():
        za, zb = vae.encode(x, mask).mean
        t = torch.linspace(0, 1, 7, device=x.device)[:, None]
        zs = (1 - t) * za + t * zb
        e = torch.where(t < 0.5, x[0, vae.point_dim :], x[1, vae.point_dim :])
        loc, _ = vae.decode(zs, e)
    frames = vae.to_points(torch.cat([loc, e], -1))
    title = f"ShapeVAE-{k}: interpolation between two test shapes"
    draw(frames, "interpolation.png", title, fn=interpolation_strip)
    _traversals(out, vae, za, x[0, vae.point_dim :], run.results["activity"][f"ShapeVAE-{k}"], pop)
    # surfaces of two samples by the thesis's three methods (Fig. 3.12)
    _surfaces(out, vae, k, run)


def _surfaces(out, vae, k, run) -> None:
    """Two ShapeVAE samples as points and as surfaces: alpha shapes (radius ``alpha_radius``),
    template deformation of the training set's part meshes, and the signed-distance (or
    Poisson) surface from points and normals; also each signed-distance surface as PLY."""
    from pgm3d.evaluation import alpha_shape, template_surface
    from pgm3d.viz import render_mesh, render_meshes, render_shapes

    sample = vae.to_points(vae.sample(2, generator=run.gen(7), mean=True))
    r = run.s.alpha_radius
    # each method from a sample's points, normals, present-point mask and existences
    methods = {
        f"alpha shape (r = {r})": lambda p, n, keep, e: alpha_shape(p[keep], r),
        "template deformation": lambda p, n, keep, e: template_surface(p, e, run.train),
        "signed distance": lambda p, n, keep, e: reconstruct_surface(p[keep], n[keep],
                                                                     resolution=48),
    }  # fmt: skip
    meshes, titles = [], []
    for i in range(2):
        args = (sample["points"][i], sample["normals"][i], sample["point_mask"][i],
                sample["existence"][i])  # fmt: skip
        for name, make in methods.items():
            try:
                mesh = make(*args)
            except ValueError:  # too sparse for this method: the panel stays blank
                mesh = None
            meshes.append(mesh)
            titles.append(f"sample {i}: {name}" + ("" if mesh is not None else " (failed)"))
        if meshes[-1] is not None:
            meshes[-1].to_trimesh().export(out / f"surface_{i}.ply")
            title = f"ShapeVAE-{k} sample {i}: surface from points + normals"
            render_mesh(meshes[-1], out / f"surface_{i}.png", title=title)
    if any(m is not None for m in meshes):
        render_meshes(meshes, out / "surfaces.png", titles=titles, ncols=3,
                      title=f"ShapeVAE-{k} samples: alpha shapes, template deformation and "
                      "signed distance (thesis Fig. 3.12)")  # fmt: skip
    render_shapes(sample["points"], out / "surface_points.png", normals=sample["normals"],
                  masks=sample["point_mask"], part_of_point=run.train.part_of_point,
                  title="the two samples' points")  # fmt: skip


def _traversals(out, vae, z, e, activity, part_of_point, units: int = 4, steps: int = 7) -> None:
    """The thesis's Fig. 3.10: single latent units swept over -2.5 .. 2.5 from a test shape's
    posterior mean, its parts held fixed; the ``units`` most active units (rows), the sweep
    (columns)."""
    from pgm3d.viz import render_shapes

    order = torch.tensor(activity["activity"]).argsort(descending=True)[:units].tolist()
    values = torch.linspace(-2.5, 2.5, steps, device=z.device)
    with torch.no_grad():
        zs = z.repeat(len(order) * steps, 1)
        for row, d in enumerate(order):
            zs[row * steps : (row + 1) * steps, d] = values
        flags = e.expand(len(zs), -1)
        loc, _ = vae.decode(zs, flags)
    shapes = vae.to_points(torch.cat([loc, flags], -1))
    titles = [f"unit {d}: {v:+.1f}" if j == 0 or row == 0 else f"{v:+.1f}"
              for row, d in enumerate(order) for j, v in enumerate(values.tolist())]  # fmt: skip
    render_shapes(
        shapes["points"],
        out / "traversals.png",
        ncols=steps,
        normals=shapes["normals"],
        masks=shapes["point_mask"],
        part_of_point=part_of_point,
        titles=titles,
        title="ShapeVAE: single-unit traversals of a test shape's posterior mean, the most "
        "active units (rows; thesis Fig. 3.10)",
    )
