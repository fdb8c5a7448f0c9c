"""The steps a user runs on their own data and models: fit, complete, evaluate, sample, bench.

Each is a function that writes its results to an output folder (``metrics.json`` with the
headline numbers, a ``table.md``, PNG figures) and returns the metrics; the ``pgm3d`` command's
subcommands of the same names call them, and ``pgm3d demo`` chains them. Settings are keyword
arguments with defaults in ``*_DEFAULTS``; a model comes back with :func:`pgm3d.load`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from pgm3d._io import atomic_write_json, atomic_write_text
from pgm3d._progress import progress_bar
from pgm3d.autoguide import auto
from pgm3d.config import CONFIG_FILE, read_config
from pgm3d.contract import WrappedModel
from pgm3d.data.datasets import DataSplit, open_data
from pgm3d.data.masks import hide_for_completion
from pgm3d.data.shapes import ShapeSet
from pgm3d.data.voxels import VoxelSet
from pgm3d.evaluation import evaluate_posteriors, imputation_mse, log_likelihood_per_dim
from pgm3d.experiments._results import markdown_table, write_results
from pgm3d.experiments._settings import check_run, merge_settings
from pgm3d.inference import COMPLETION_METHODS, OBJECTIVES, EpochSummary, complete, fit, fit_gan
from pgm3d.inference.base import default_methods, method_options, method_unit
from pgm3d.inference.logs import training_log
from pgm3d.models import MODELS, build_model, model_rows, trained_by_sgd
from pgm3d.models.base import DATA_KINDS, data_kind
from pgm3d.saving import CHECKPOINT_FILE, MODEL_FILE, load, save

__all__ = [
    "BENCH_DEFAULTS",
    "COMPLETE_DEFAULTS",
    "DATA_DEFAULTS",
    "FIT_DEFAULTS",
    "SAMPLE_DEFAULTS",
    "run_bench",
    "run_complete",
    "run_evaluate",
    "run_fit",
    "run_sample",
]

#: where the data come from (see :func:`pgm3d.data.datasets.open_data`)
DATA_DEFAULTS = {
    "data": "chairs",
    "data_path": None,
    "n_train": 1000,
    "n_test": 250,
    "points_per_part": 16,
    "test_fraction": 0.2,
    "resolution": 32,  # voxel grids
}
FIT_DEFAULTS = {
    **DATA_DEFAULTS,
    "model": None,  # the default for the data's kind (DEFAULT_MODELS): shapevae for chairs
    "latent_dim": None,  # the model's own default (8; VSL's z0 20; the GAN's 200)
    "hidden": None,  # the model's own default
    "part_dim": None,
    "likelihood": "gaussian",
    "objective": None,  # "elbo" for the models trained by SGD
    "guide": None,  # the model's own; "auto-<family>": an autoguide (pgm3d.autoguide)
    "epochs": 50,
    "batch_size": 100,
    "lr": 1e-3,
    "kl_weight": None,  # 1; VSL: the seed's beta = 1e-3 (VSL.kl_weight_for)
    "kl_warmup": 0,
    "num_particles": 1,
    "iwae_samples": 500,
    "ll_rows": 100,
    "checkpoint_every": 100,
    "log": "csv",
}
COMPLETE_DEFAULTS = {
    **DATA_DEFAULTS,
    "methods": None,  # every method that applies to the model
    "drop": None,  # "parts" for shapes, "random" for rows
    "p_missing": None,  # 0.25 of the parts, 0.5 of the entries
    "rows": 100,
    "chains": 4,
    "warmup": 100,
    "thin": 10,
    "num_samples": 25,
    "num_proposals": 1000,
    "iwae_samples": 500,
    "figure_rows": 4,
}
SAMPLE_DEFAULTS = {"num": 16, "mean": True}
#: the model ``run_fit`` builds when none is named, by the kind of the data
DEFAULT_MODELS = {"shapes": "shapevae", "rows": "vae", "voxels": "vsl", "scenes": "mvae"}
BENCH_DEFAULTS = {
    **DATA_DEFAULTS,
    "model": "vae",
    "data": "digits",
    "latent_dim": 8,
    "batch_size": 100,
    "steps": 50,
    "rows": 100,
    "num_particles": 8,
}


def _label(model) -> str:
    """The model's class name (the wrapped model's, for a model with an autoguide)."""
    return model.name if isinstance(model, WrappedModel) else type(model).__name__


def _data(s: dict) -> DataSplit:
    return open_data(
        s["data"],
        n_train=s["n_train"],
        n_test=s["n_test"],
        points_per_part=s["points_per_part"],
        test_fraction=s["test_fraction"],
        seed=s["seed"],
        data_path=s["data_path"],
        resolution=s["resolution"],
    )


def _curve(history, path: Path, title: str) -> None:
    from pgm3d.viz.charts import curves

    curves({"bound": history.bound}, path, ylabel="bound per data point (nats)", title=title)


def _fit_gan(model, train, s: dict, out: Path, seed: int, resume: bool, progress):
    """Adversarial training with the paper's rates (:func:`~pgm3d.inference.fit_gan`)."""
    if resume:
        raise ValueError("GAN training keeps no checkpoints; run it again without --resume")
    if s["objective"] is not None:
        raise ValueError("the GAN is trained adversarially; --objective does not apply")
    x = model_rows(model, train)[0]
    history = fit_gan(
        model, x, epochs=s["epochs"], batch_size=s["batch_size"], seed=seed, progress=progress
    )
    names = ("d_loss", "g_loss", "d_accuracy", "d_updates")
    rows = zip(*(getattr(history, n) for n in names), strict=True)
    lines = [",".join(("epoch", *names))]
    lines += [",".join(map(str, (i, *r))) for i, r in enumerate(rows, 1)]
    atomic_write_text(out / "train_log.csv", "\n".join(lines) + "\n")
    return {
        "objective": "gan (Wu et al. 2016)",
        "final_d_accuracy": history.d_accuracy[-1] if history.d_accuracy else None,
        "training_seconds": history.seconds,
    }


def run_fit(
    out: str | Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    resume: bool = False,
    trust: bool = False,
    progress: bool | None = None,
    summary: bool = False,
    config: dict | None = None,
    **settings,
) -> dict:
    """Build a model by name, fit it to a dataset, save it and measure its test log-likelihood.

    Writes ``model.pt`` (:func:`pgm3d.load`), for models trained by SGD ``checkpoint.pt`` every
    ``checkpoint_every`` steps and ``train_log.csv`` / ``training_curve.png``, ``metrics.json``
    and ``table.md``.

    :param settings: see :data:`FIT_DEFAULTS` (``model``, ``data``, ``objective``, ``epochs`` ...).
    :param bool resume: continue from ``out/checkpoint.pt`` (bit-exact, see
        :func:`~pgm3d.inference.fit`).
    :param bool trust: on ``resume``, also read a checkpoint pgm3d 0.1 wrote (a pickle, which
        can run code: only your own; see :mod:`pgm3d.saving`).
    :param bool summary: print one line per epoch.
    :param dict config: the effective configuration, stored in the checkpoint and model file.
    """
    check_run(seed, device)
    s = merge_settings(FIT_DEFAULTS, settings)
    s["seed"] = seed
    out = Path(out)
    start = time.perf_counter()
    split = _data(s)
    if split.empty_rows:
        shown = ", ".join(map(str, split.empty_rows[:10]))
        raise ValueError(
            f"{s['data']}: {len(split.empty_rows)} row(s) have no observed entry (rows {shown}"
            f"{', ...' if len(split.empty_rows) > 10 else ''}, counting from 1); they carry "
            "nothing to train on: drop them"
        )
    torch.manual_seed(seed)
    options = {k: s[k] for k in ("latent_dim", "part_dim", "likelihood") if s[k] is not None}
    if s["hidden"] is not None:
        options["hidden"] = s["hidden"]
    chosen = s["model"] is None
    if chosen:  # the default fits the data, and the table says so
        kind = data_kind(split.train)
        s["model"] = DEFAULT_MODELS[kind]
    model = build_model(s["model"], split.train, progress=progress, **options).to(device)
    metrics = {"model": s["model"], "data": s["data"], "seed": seed, "device": str(device)}
    if chosen:
        metrics["model_chosen"] = f"the default for {DATA_KINDS[kind][0]}; --model to choose"
    if s["guide"] not in (None, "model"):
        if not trained_by_sgd(model):
            raise ValueError(
                f"--guide applies to the models trained by SGD (vae, shapevae, vsl, ...); "
                f"{s['model']} is fitted when built"
            )
        family = s["guide"].removeprefix("auto-")
        model = auto(model, family)
        metrics["guide"] = f"autoguide ({family}, mask-aware)"
    out.mkdir(parents=True, exist_ok=True)  # everything it needs is read and checked by now
    if trained_by_sgd(model):
        objective = s["objective"] or "elbo"
        OBJECTIVES[objective]
        x, mask = model_rows(model, split.train)
        kl_weight = s["kl_weight"]
        if kl_weight is None:
            kl_weight = model.default_kl_weight()
        log = training_log(s["log"], out)
        callbacks = [c for c in (log, EpochSummary(s["epochs"]) if summary else None) if c]
        history = fit(
            model,
            x,
            objective,
            mask=mask,
            num_particles=s["num_particles"],
            kl_weight=kl_weight,
            kl_warmup=s["kl_warmup"],
            epochs=s["epochs"],
            batch_size=s["batch_size"],
            lr=s["lr"],
            seed=seed,
            progress=progress,
            callbacks=callbacks,
            checkpoint=out / CHECKPOINT_FILE,
            checkpoint_every=s["checkpoint_every"],
            resume=resume,
            trust=trust,
            config=config,
        )
        model.eval()
        _curve(history, out / "training_curve.png", f"{s['model']} on {s['data']}: {objective}")
        metrics.update(
            objective=objective,
            final_bound=history.bound[-1] if history.bound else None,
            steps=history.steps,
            training_seconds=history.seconds,
        )
    elif model.trained_by == "adversarial":
        metrics.update(_fit_gan(model, split.train, s, out, seed, resume, progress))
    elif s["objective"] is not None:
        raise ValueError(
            f"{s['model']} is fitted in closed form or by EM when built; --objective applies to "
            "the models trained by SGD (vae, shapevae, vsl)"
        )
    save(model, out / MODEL_FILE, config)
    test = split.test[: s["ll_rows"]]
    xt, mt = model_rows(model, test)
    existence = test.existence if isinstance(test, ShapeSet) else None
    torch.manual_seed(seed)
    ll, exact = log_likelihood_per_dim(
        model, xt, mt, existence=existence, num_samples=s["iwae_samples"]
    )
    metrics.update(
        parameters=sum(p.numel() for p in model.parameters()),
        **_scored(ll),
        log_likelihood="exact" if exact else f"IWAE bound, K={s['iwae_samples']}",
        seconds=time.perf_counter() - start,
    )
    rows = [
        (k.replace("_", " "), f"{v:.6g}" if isinstance(v, float) else str(v))
        for k, v in metrics.items()
    ]
    write_results(
        out,
        metrics,
        markdown_table(("what", "value"), rows, title=f"{s['model']} fitted to {s['data']}"),
    )
    return metrics


def _scored(ll: torch.Tensor) -> dict:
    """The mean test log-likelihood over the rows that have one (rows with no observed entry
    are NaN, not scored) and, when there are such rows, how many."""
    unscored = int(ll.isnan().sum())
    out = {"test_log_likelihood_nats_per_dim": float(ll.nanmean())}
    return {**out, "rows_not_scored": unscored} if unscored else out


def _run_info(run: str | Path, device, trust: bool = False) -> tuple[object, dict]:
    """A saved model and the data settings it was fitted with (from its file or folder)."""
    model, info = load(run, device=device, with_info=True, trust=trust)
    run = Path(run)
    saved = run / CONFIG_FILE if run.is_dir() else run.parent / CONFIG_FILE
    if not info and saved.is_file():
        info = read_config(saved)
    return model, {k: v for k, v in (info or {}).items() if k in (*DATA_DEFAULTS, "seed")}


def _hide(model, test, s: dict, x: torch.Tensor, mask: torch.Tensor, image_shape, seed: int):
    """The mask with entries hidden for completion, and the hidden (scored) entries
    (:func:`~pgm3d.data.masks.hide_for_completion`, seeded from the run's seed)."""
    return hide_for_completion(
        test,
        x,
        mask,
        drop=s["drop"],
        p_missing=s["p_missing"],
        image_shape=image_shape,
        part_of_entry=getattr(model, "part_of_entry", None),
        point_dim=getattr(model, "point_dim", None),
        generator=torch.Generator().manual_seed(seed * 1000 + 7),
    )


def _methods(model, given) -> list[str]:
    """The methods given (checked against the registry), or those that run by default."""
    for m in given or ():
        COMPLETION_METHODS[m]
    return list(given) if given else default_methods(model)


def _options(method: str, s: dict, seed: int, progress) -> dict:
    """The settings a method takes (its keyword arguments), with the run's seed."""
    given = {k: v for k, v in s.items() if not k.startswith("_")}
    given.update(seed=seed, progress=progress)
    allowed = method_options(method)
    return {k: v for k, v in given.items() if k in allowed and k != "context"}


def _prepare(run, s, seed, device, trust):
    model, info = _run_info(run, device, trust)
    if not model.completion_methods:
        takers = [n for n in MODELS if MODELS[n].completion_methods]
        raise ValueError(
            f"no completion back end applies to {_label(model)}; complete and evaluate "
            f"take {', '.join(takers)} models"
        )
    s = {**s, **{k: v for k, v in info.items() if s.get(f"_given_{k}") is None}}
    s["seed"] = info.get("seed", seed)
    split = _data(s)
    test = split.test[: s["rows"]]
    x, mask = model_rows(model, test)
    kept, hidden = _hide(model, test, s, x, mask, split.image_shape, seed)
    return s, model, split, test, x, kept, hidden


def _resolve(settings: dict, defaults: dict) -> dict:
    """Settings with the data keys the user gave marked, so a run's own data settings fill
    only the others."""
    s = merge_settings(defaults, settings)
    for k in DATA_DEFAULTS:
        s[f"_given_{k}"] = settings.get(k)
    return s


def run_complete(
    out: str | Path,
    run: str | Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    trust: bool = False,
    progress: bool | None = None,
    **settings,
) -> dict:
    """Hide parts (shapes) or entries (rows) of test data and fill them in with each method.

    Writes ``completions.npz`` (truth, mask, one completion per method), ``metrics.json``
    (imputation MSE on the hidden entries, its standard error and the wall time per method),
    ``table.md`` and ``completion.png``.

    :param run: a model file or a ``pgm3d fit`` folder; its data settings are the defaults.
    :param settings: see :data:`COMPLETE_DEFAULTS`.
    :param bool trust: also read a model file pgm3d 0.1 wrote (a pickle, which can run
        code: only files you trust; see :mod:`pgm3d.saving`).
    """
    check_run(seed, device)
    s = _resolve(settings, COMPLETE_DEFAULTS)
    s, model, split, test, x, kept, scored = _prepare(run, s, seed, device, trust)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results, filled = {}, {}
    for method in progress_bar(_methods(model, s["methods"]), desc="complete", progress=progress):
        t = time.perf_counter()
        with torch.no_grad():
            done = complete(model, x, kept, method, **_options(method, s, seed, progress))
        err = imputation_mse(x.double(), done.x.double(), ~scored)
        filled[method] = done.x.detach()
        results[method] = {
            "mse": err.mean,
            "se": err.stderr,
            "seconds": time.perf_counter() - t,
        }
    np.savez_compressed(
        out / "completions.npz",
        x=x.cpu().numpy(),
        mask=kept.cpu().numpy(),
        **{m: v.cpu().numpy() for m, v in filled.items()},
    )
    _completion_figure(out / "completion.png", model, split, test, x, kept, filled, s)
    metrics = {
        "model": _label(model),
        "data": s["data"],
        "rows": int(x.shape[0]),
        "hidden_entries": int(scored.sum()),
        "completion_mse": {m: r["mse"] for m, r in results.items()},
        "completion": results,
    }
    lines = [
        f"# Completion of hidden entries: {_label(model)} on {s['data']}\n",
        "| method | imputation MSE | ± s.e. | seconds |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {m} | {r['mse']:.4g} | {r['se']:.2g} | {r['seconds']:.2f} |" for m, r in results.items()
    ]
    write_results(out, metrics, "\n".join(lines) + "\n")
    return metrics


def _points(model, rows: torch.Tensor, test: ShapeSet) -> tuple[torch.Tensor, torch.Tensor]:
    """Points and normals ``(N, P, 3)`` of data rows, for figures."""
    P = test.points.shape[1]
    flat = rows[:, : P * 6] if rows.shape[-1] >= P * 6 else rows[:, : P * 3]
    per_point = flat.reshape(rows.shape[0], P, -1).detach().cpu().float()
    normals = per_point[..., 3:] if per_point.shape[-1] == 6 else None
    return per_point[..., :3], normals


def _completion_figure(path, model, split, test, x, kept, filled, s) -> None:
    from pgm3d.viz import completion_grid, render_shapes, voxel_completion_grid

    n = min(s["figure_rows"], x.shape[0])
    if split.image_shape is not None:
        completion_grid(
            x[:n].cpu(),
            kept[:n].cpu(),
            {m: v[:n].cpu() for m, v in filled.items()},
            split.image_shape,
            path,
        )
        return
    if isinstance(test, VoxelSet):
        voxel_completion_grid(x[:n], kept[:n], {m: v[:n] for m, v in filled.items()}, path)
        return
    if not isinstance(test, ShapeSet):
        return  # plain rows have no picture
    present = test.point_mask()[:n].cpu()
    P = present.shape[1]
    observed = kept[:n, : P * 6 : 6].cpu() if kept.shape[-1] >= P * 6 else present
    columns = [("truth", x[:n], present), ("observed", x[:n], observed & present)]
    columns += [(m, v[:n], present) for m, v in filled.items()]
    points, normals, masks, titles = [], [], [], []
    for i in range(n):
        for name, rows, m in columns:
            p, nrm = _points(model, rows[i : i + 1], test)
            points.append(p[0])
            normals.append(nrm[0] if nrm is not None else torch.zeros_like(p[0]))
            masks.append(m[i])
            titles.append(name if i == 0 else "")
    render_shapes(
        torch.stack(points),
        path,
        ncols=len(columns),
        normals=torch.stack(normals),
        masks=torch.stack(masks),
        part_of_point=test.part_of_point.cpu(),
        titles=titles,
        title="completion of dropped parts (each row one test shape)",
    )


def run_evaluate(
    out: str | Path,
    run: str | Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    trust: bool = False,
    progress: bool | None = None,
    **settings,
) -> dict:
    """Test log-likelihood and the posterior comparison table of the inference layer
    (:func:`~pgm3d.evaluation.evaluate_posteriors`: imputation error, distance to the exact
    posterior where there is one, PSIS k-hat, R-hat and ESS) on test data with hidden parts or
    entries. Writes ``metrics.json`` and ``table.md``.

    :param settings: see :data:`COMPLETE_DEFAULTS`.
    :param bool trust: also read a model file pgm3d 0.1 wrote (a pickle, which can run
        code: only files you trust; see :mod:`pgm3d.saving`).
    """
    check_run(seed, device)
    s = _resolve(settings, COMPLETE_DEFAULTS)
    start = time.perf_counter()
    s, model, _split, test, x, kept, scored = _prepare(run, s, seed, device, trust)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    full = model_rows(model, test)[1]
    existence = test.existence if isinstance(test, ShapeSet) else None
    torch.manual_seed(seed)
    ll, exact = log_likelihood_per_dim(
        model, x, full, existence=existence, num_samples=s["iwae_samples"]
    )
    methods = _methods(model, s["methods"])
    options = {m: _options(m, s, seed, progress) for m in methods}
    table = evaluate_posteriors(model, x, kept, methods, x_true=x, options=options, scored=scored)
    metrics = {
        "model": _label(model),
        "data": s["data"],
        "rows": int(x.shape[0]),
        **_scored(ll),
        "log_likelihood": "exact" if exact else f"IWAE bound, K={s['iwae_samples']}",
        "posteriors": table.rows,
        "seconds": time.perf_counter() - start,
    }
    text = (
        f"# Posterior approximations of {_label(model)} on {s['data']}\n\n"
        f"Test log-likelihood: {metrics['test_log_likelihood_nats_per_dim']:.4f} nats per "
        f"observed dimension ({metrics['log_likelihood']}), {x.shape[0]} rows"
        + (
            f" ({metrics['rows_not_scored']} with no observed entry, not scored)"
            if "rows_not_scored" in metrics
            else ""
        )
        + ". Below, each "
        f"method infers the latents of the same rows with {int(scored.sum())} entries hidden.\n\n"
        + table.to_markdown()
    )
    write_results(out, metrics, text)
    return metrics


def run_sample(
    out: str | Path,
    run: str | Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    trust: bool = False,
    progress: bool | None = None,
    **settings,
) -> dict:
    """Draw ``num`` samples from a saved model; writes ``samples.npz``, ``samples.png`` (shape,
    voxel and image data) and ``metrics.json``.

    :param settings: see :data:`SAMPLE_DEFAULTS` (``mean=True`` draws decoder means, without
        observation noise).
    :param bool trust: also read a model file pgm3d 0.1 wrote (a pickle, which can run
        code: only files you trust; see :mod:`pgm3d.saving`).
    """
    check_run(seed, device)
    s = merge_settings(SAMPLE_DEFAULTS, settings)
    model, info = _run_info(run, device, trust)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n = s["num"]
    g = torch.Generator(device=device).manual_seed(seed)
    kind = model.data_kind
    with torch.no_grad():
        if kind == "shapes":  # points, normals and which points exist, for the figure
            shapes = model.sample_shapes(n, generator=g, mean=s["mean"])
            rows = shapes["rows"]
        else:  # rows, grids for voxel models; pixel probabilities or draws for scenes
            rows, shapes = model.sample(n, generator=g, mean=s["mean"]), None
    grids = rows if kind == "voxels" else None
    rows = rows.reshape(n, -1)
    np.savez_compressed(out / "samples.npz", x=rows.cpu().numpy())
    if shapes is not None:
        from pgm3d.viz import render_shapes

        part_of_point = model.part_of_entry[:: model.width].cpu()
        render_shapes(
            shapes["points"].cpu(),
            out / "samples.png",
            normals=None if shapes["normals"] is None else shapes["normals"].cpu(),
            masks=shapes["point_mask"].cpu(),
            part_of_point=part_of_point,
            title=f"{_label(model)}: {n} samples",
        )
    elif kind == "scenes":
        from pgm3d.viz import image_grid

        S = model.image_size
        cols = min(8, n)
        grid = rows.cpu().reshape(-1, 3, S, S)[: n - n % cols or n].reshape(-1, cols, 3, S, S)
        image_grid(grid, out / "samples.png", title=f"{_label(model)}: samples")
    elif kind == "voxels":
        from pgm3d.viz import render_shapes

        title = f"{_label(model)}: {n} samples (occupancy > 0.5)"
        render_shapes((grids > 0.5).cpu(), out / "samples.png", kind="voxels", title=title)
    elif info.get("data") in ("digits", "frey"):
        _image_grid(rows.cpu(), (8, 8) if info["data"] == "digits" else (28, 20), out)
    metrics = {"model": _label(model), "samples": n, "mean": s["mean"], "seed": seed}
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def _image_grid(rows: torch.Tensor, shape, out: Path) -> None:
    """Samples as a grid of at most 8 columns (the last row padded blank)."""
    from pgm3d.viz import image_grid

    n, cols = rows.shape[0], min(8, rows.shape[0])
    R = -(-n // cols)
    padded = torch.full((R * cols, rows.shape[1]), float("nan"))
    padded[:n] = rows.clamp(-1, 1)
    image_grid(padded.reshape(R, cols, *shape), out / "samples.png", cmap="gray", panel=0.9)


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def run_bench(
    out: str | Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | None = None,
    quick: bool = False,
    **settings,
) -> dict:
    """Throughput of training (steps/s per objective) and completion (rows/s per method) of one
    model on one device. Writes ``metrics.json`` and ``table.md``.

    :param settings: see :data:`BENCH_DEFAULTS`.
    """
    check_run(seed, device)
    s = merge_settings(BENCH_DEFAULTS, settings)
    s["seed"] = seed
    if quick:
        s.update(steps=min(s["steps"], 10), rows=min(s["rows"], 20))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    split = _data(s)
    torch.manual_seed(seed)
    model = build_model(s["model"], split.train, latent_dim=s["latent_dim"]).to(device)
    x, mask = model_rows(model, split.train)
    rows = {}
    B = min(s["batch_size"], x.shape[0])
    epochs = max(1, -(-s["steps"] * B // x.shape[0]))  # at least ``steps`` steps
    train = {"mask": mask, "batch_size": B, "num_particles": s["num_particles"], "progress": False}
    if trained_by_sgd(model):
        for name in progress_bar(OBJECTIVES.names(), desc="bench objectives", progress=progress):
            fit(model, x[:B], name, epochs=1, **{**train, "mask": mask[:B]})  # warm-up
            _sync(device)
            t = time.perf_counter()
            history = fit(model, x, name, epochs=epochs, **train)
            _sync(device)
            rows[f"train {name} (K={s['num_particles']}, {B} rows per step)"] = history.steps / (
                time.perf_counter() - t
            )
    test = split.test[: s["rows"]]
    xt, mt = model_rows(model, test)
    hide = {"drop": None, "p_missing": None}  # parts of shapes, half the entries of rows
    kept, _ = _hide(model, test, hide, xt, mt, split.image_shape, seed)
    small = {"chains": 1, "warmup": 10, "thin": 1, "num_samples": 10, "num_proposals": 100}
    for method in progress_bar(_methods(model, None), desc="bench completion", progress=progress):
        opts = _options(method, small, seed, False)
        with torch.no_grad():
            complete(model, xt, kept, method, **opts)  # warm-up
            _sync(device)
            t = time.perf_counter()
            complete(model, xt, kept, method, **opts)
            _sync(device)
        rows[f"complete {method} ({method_unit(method, opts)})"] = xt.shape[0] / (
            time.perf_counter() - t
        )
    metrics = {
        "model": s["model"],
        "data": s["data"],
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "throughput": rows,
    }
    lines = [
        f"# Throughput of {s['model']} on {s['data']} "
        f"({device}, {torch.get_num_threads()} threads)\n",
        "| what | per second | unit |",
        "|---|---:|---|",
    ]
    for k, v in rows.items():
        lines.append(f"| {k} | {v:.1f} | {'steps' if k.startswith('train') else 'rows'} |")
    write_results(out, metrics, "\n".join(lines) + "\n")
    return metrics
