"""``pgm3d fit``: build a model by registry name, fit it to data, save it, measure it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from pgm3d._io import atomic_write_text
from pgm3d._log import stage
from pgm3d.autoguide import FAMILIES as GUIDE_FAMILIES
from pgm3d.autoguide import auto
from pgm3d.config import run_config
from pgm3d.data.datasets import DATA_KINDS, DataSettings
from pgm3d.evaluation import log_likelihood_per_dim
from pgm3d.inference import OBJECTIVES, EpochSummary, fit_gan
from pgm3d.inference import fit as sgd_fit
from pgm3d.inference.logs import training_log
from pgm3d.models import MODELS, build_model, model_rows, trained_by_sgd
from pgm3d.models.gan3d import ENCODERS
from pgm3d.saving import CHECKPOINT_FILE, MODEL_FILE, save
from pgm3d.settings import check_run, option
from pgm3d.tasks._run import scored_mean
from pgm3d.tasks.results import markdown_table, write_results

__all__ = ["DEFAULT_MODELS", "FitSettings", "run_fit"]

#: the model ``run_fit`` builds when none is named, by the kind of the data
DEFAULT_MODELS = {
    "shapes": "shapevae",
    "rows": "vae",
    "voxels": "vsl",
    "scenes": "mvae",
    "views": "gan",  # the 3D-VAE-GAN from images
}


def _guides() -> list[str]:
    return ["model", *(f"auto-{f}" for f in GUIDE_FAMILIES.names())]


@dataclass
class FitSettings(DataSettings):
    """The settings of :func:`run_fit`: the data (:class:`DataSettings`), the model and how to
    train it."""

    model: str | None = option(
        None,
        "the model, by registry name",
        kind=str,
        choices=MODELS,
        shown="the one for the data: "
        + ", ".join(f"{m} for {k}" for k, m in DEFAULT_MODELS.items()),
    )
    latent_dim: int | None = option(
        None, "size of z", kind=int, shown="the model's: 8; VSL z0 20; GAN 200"
    )
    hidden: int | None = option(None, "hidden width", kind=int, shown="the model's")
    part_dim: int | None = option(
        None, "ShapeVAE u_p / ShapeFA factors", kind=int, shown="the model's"
    )
    likelihood: str = option("gaussian", "observation noise", choices=("gaussian", "bernoulli"))
    encoder: str | None = option(
        None,
        "the GAN's encoder: none (the 3D-GAN), voxels (the 3D-VAE-GAN's q(z | x)) or image "
        "(Wu et al.'s image encoder, q(z | image); data: a voxel set's views, e.g. "
        "primitives-views)",
        kind=str,
        choices=tuple(ENCODERS),
        shown="image on views, else none",
    )
    objective: str | None = option(
        None,
        "training objective (models trained by SGD)",
        kind=str,
        choices=OBJECTIVES,
        shown="elbo",
    )
    guide: str | None = option(
        None,
        "the model's own guide (model), or an amortised mask-aware autoguide of a family "
        "(pgm3d.autoguide) in its place",
        kind=str,
        choices=_guides,
        shown="model",
    )
    epochs: int = option(50, "passes over the training data")
    batch_size: int = option(100, "rows per step")
    lr: float = option(1e-3, "Adam learning rate")
    kl_weight: float | None = option(
        None, "KL weight", kind=float, shown="1; VSL: the seed's beta 1e-3"
    )
    kl_warmup: int = option(0, "steps of linear KL warm-up")
    num_particles: int = option(1, "samples per data point")
    train_missing: float = option(
        0.0,
        "hide this fraction of the training entries at random before training (the MIWAE "
        "setting with --objective iwae; rows of numbers only)",
    )
    iwae_samples: int = option(500, "K of the test IWAE bound")
    ll_rows: int = option(100, "test rows for the likelihood")
    checkpoint_every: int = option(100, "steps between checkpoints")
    strategy: str | None = option(
        None,
        "train through Lightning with this strategy, across --devices processes (the pgm3d "
        "lightning extra); ddp starts this command again in each further process",
        kind=str,
        choices=("ddp", "ddp_spawn", "auto"),
        shown="pgm3d's own loop on one device",
    )
    devices: int = option(1, "devices (processes) per node for --strategy")
    accelerator: str | None = option(
        None,
        "Lightning's accelerator for --strategy",
        kind=str,
        choices=("cpu", "gpu", "auto"),
        shown="from --device",
    )
    log: str = option("csv", "training log", choices=("csv", "tensorboard", "none"))
    resume: bool = option(False, "continue from OUT/checkpoint.pt")
    trust_file: bool = option(
        False,
        "on --resume, also read a checkpoint written by pgm3d 0.1, a pickle: reading it can run "
        "any code it holds, so only for files you made or trust",
    )


def _hide_training_entries(split, p: float, seed: int):
    """The split with a fraction ``p`` of its training entries missing (NaN) at random, each
    row keeping at least one entry; the test rows are untouched."""
    from dataclasses import replace

    from pgm3d.data.masks import keep_one_observed, random_mask

    if not 0 <= p < 1:
        raise ValueError(f"--train-missing must be in [0, 1), got {p}")
    if split.kind != "rows":
        raise ValueError(
            f"--train-missing hides entries of rows of numbers; {split.name} holds "
            f"{DATA_KINDS[split.kind][0]}"
        )
    train = split.train
    g = torch.Generator().manual_seed(seed + 3)
    keep = keep_one_observed(random_mask(train.shape, p, generator=g), generator=g)
    keep = keep.to(train.device)
    return replace(split, train=torch.where(keep, train, torch.nan))


def _fit_gan(model, train, s: FitSettings, out: Path, seed: int, progress) -> dict:
    """Adversarial training with the paper's rates (:func:`~pgm3d.inference.fit_gan`)."""
    if s.resume:
        raise ValueError("GAN training keeps no checkpoints; run it again without --resume")
    if s.objective is not None:
        raise ValueError("the GAN is trained adversarially; --objective does not apply")
    x = model_rows(model, train)[0]
    images = train.images if _reads_images(model) else None  # every view of each shape
    history = fit_gan(
        model, x, epochs=s.epochs, batch_size=s.batch_size, seed=seed, progress=progress,
        images=images,
    )  # fmt: skip
    names = ("d_loss", "g_loss", "d_accuracy", "d_updates")
    rows = zip(*(getattr(history, n) for n in names), strict=True)
    lines = [",".join(("epoch", *names))]
    lines += [",".join(map(str, (i, *r))) for i, r in enumerate(rows, 1)]
    atomic_write_text(out / "train_log.csv", "\n".join(lines) + "\n")
    return {
        "objective": "gan (Wu et al. 2016)",
        "encoder": "image" if _reads_images(model) else "voxels" if model.encoder else "none",
        "final_d_accuracy": history.d_accuracy[-1] if history.d_accuracy else None,
        "training_seconds": history.seconds,
    }


def _reads_images(model) -> bool:
    return bool(getattr(model, "image_encoder", False))


def _check_strategy(s: FitSettings, device) -> None:
    """Refuse a --strategy run that cannot go (before anything is written)."""
    if s.strategy is None:
        if s.devices != 1 or s.accelerator is not None:
            raise ValueError("--devices and --accelerator apply to Lightning runs: add --strategy")
        return
    import pgm3d.lightning  # noqa: F401  (says how to install Lightning when it is missing)

    if s.resume:
        raise ValueError(
            "--resume continues pgm3d's own checkpoints; a --strategy run writes the model "
            "after each epoch but cannot resume yet: run without --resume"
        )
    if s.batch_size % s.devices:
        raise ValueError(
            f"--batch-size {s.batch_size} is the rows of one step over all {s.devices} "
            f"processes: give a multiple of {s.devices}"
        )
    if str(device).startswith("cuda") and s.accelerator == "cpu":
        raise ValueError("--device cuda with --accelerator cpu: choose one")


def _fit_lightning(model, x, mask, s, out, seed, progress, config, callbacks, kl_weight):
    """Training through Lightning (:func:`pgm3d.lightning.fit_lightning`); the model is
    written after each epoch, as the checkpoint is in pgm3d's own loop."""
    from pgm3d.lightning import fit_lightning

    device = next(iter(model.parameters()), torch.empty(0)).device
    accelerator = s.accelerator or ("gpu" if device.type == "cuda" else "cpu")
    return fit_lightning(model, x, s.objective or "elbo", mask=mask,
                         num_particles=s.num_particles, kl_weight=kl_weight,
                         kl_warmup=s.kl_warmup, epochs=s.epochs, batch_size=s.batch_size,
                         lr=s.lr, strategy=s.strategy, devices=s.devices,
                         accelerator=accelerator, callbacks=callbacks,
                         save_to=out / MODEL_FILE, info=config, seed=seed,
                         progress=progress)  # fmt: skip


def _fit_sgd(model, train, s: FitSettings, out: Path, seed: int, progress, config) -> dict:
    """Stochastic training with any objective (:func:`~pgm3d.inference.fit`), checkpointed;
    through Lightning with ``s.strategy``."""
    objective = s.objective or "elbo"
    x, mask = model_rows(model, train)
    kl_weight = model.default_kl_weight() if s.kl_weight is None else s.kl_weight
    log = training_log(None if s.log == "none" else s.log, out)
    summary = EpochSummary(s.epochs) if progress is not False else None
    metrics = {"objective": objective}
    if s.strategy is not None:
        history = _fit_lightning(model, x, mask, s, out, seed, progress, config,
                                 [c for c in (log, summary) if c], kl_weight)  # fmt: skip
        metrics.update(strategy=f"{s.strategy}, {s.devices} device(s) (Lightning)",
                       rank=history.rank)  # fmt: skip
        if history.rank != 0:
            return metrics
    else:
        history = sgd_fit(
            model,
            x,
            objective,
            mask=mask,
            num_particles=s.num_particles,
            kl_weight=kl_weight,
            kl_warmup=s.kl_warmup,
            epochs=s.epochs,
            batch_size=s.batch_size,
            lr=s.lr,
            seed=seed,
            progress=progress,
            callbacks=[c for c in (log, summary) if c],
            checkpoint=out / CHECKPOINT_FILE,
            checkpoint_every=s.checkpoint_every,
            resume=s.resume,
            trust=s.trust_file,
            config=config,
        )
    model.eval()
    title = f"{s.model} on {s.data}: {objective}"
    from pgm3d.viz.charts import curves  # matplotlib: only when drawing

    curves(
        {"bound": history.bound},
        out / "training_curve.png",
        ylabel="bound per data point (nats)",
        title=title,
    )
    return {
        **metrics,
        "final_bound": history.bound[-1] if history.bound else None,
        "steps": history.steps,
        "training_seconds": history.seconds,
    }


def _build(s: FitSettings, split, progress, device):
    """The model the settings name (or the default for the data), and what the table says of
    the choice; an autoguide in place of its guide when ``s.guide`` asks for one."""
    options = {"likelihood": s.likelihood}
    for k in ("latent_dim", "part_dim", "hidden"):
        if getattr(s, k) is not None:
            options[k] = getattr(s, k)
    notes = {}
    name = s.model
    if name is None:  # the default fits the data, and the table says so
        if split.kind not in DEFAULT_MODELS:
            raise ValueError(f"no registered model takes {DATA_KINDS[split.kind][0]} yet")
        name = DEFAULT_MODELS[split.kind]
        notes["model_chosen"] = f"the default for {DATA_KINDS[split.kind][0]}; --model to choose"
    if s.encoder is not None:
        if name != "gan":
            raise ValueError(f"--encoder chooses the GAN's encoder; {name} has its own")
        options["encoder"] = s.encoder
    model = build_model(name, split.train, progress=progress, **options).to(device)
    if s.guide not in (None, "model"):
        if not trained_by_sgd(model):
            raise ValueError(
                f"--guide applies to the models trained by SGD (vae, shapevae, vsl, ...); "
                f"{name} is fitted when built"
            )
        family = s.guide.removeprefix("auto-")
        model = auto(model, family)
        notes["guide"] = f"autoguide ({family}, mask-aware)"
    return name, model, notes


def run_fit(
    settings: FitSettings,
    out: str | Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | None = None,
) -> dict:
    """Build a model by name, fit it to a dataset, save it and measure its test log-likelihood.

    Writes ``model.pt`` (:func:`pgm3d.load`), for models trained by SGD ``checkpoint.pt`` every
    ``checkpoint_every`` steps and ``train_log.csv`` / ``training_curve.png``, ``metrics.json``
    and ``table.md``. With ``settings.resume`` it continues from ``out/checkpoint.pt``
    (bit-exact, see :func:`~pgm3d.inference.fit`).

    :param FitSettings settings: what to fit to what, and how.
    :param progress: progress bars and a line per epoch (None: on a terminal; False: none).
    :returns: the metrics, also in ``out/metrics.json``.
    """
    check_run(seed, device)
    s = settings
    _check_strategy(s, device)
    least = OBJECTIVES.info(s.objective).get("min_particles", 1) if s.objective else 1
    if s.num_particles < least:
        raise ValueError(
            f"--objective {s.objective} needs --num-particles >= {least}, got {s.num_particles}"
        )
    out = Path(out)
    start = time.perf_counter()
    split = s.open(seed)
    if split.empty_rows:
        shown = ", ".join(map(str, split.empty_rows[:10]))
        raise ValueError(
            f"{s.data}: {len(split.empty_rows)} row(s) have no observed entry (rows {shown}"
            f"{', ...' if len(split.empty_rows) > 10 else ''}, counting from 1); they carry "
            "nothing to train on: drop them"
        )
    if s.train_missing:
        split = _hide_training_entries(split, s.train_missing, seed)
    torch.manual_seed(seed)
    with stage("building the model"):
        name, model, notes = _build(s, split, progress, device)
    s = s.replace(model=name)
    config = run_config("fit", s, seed=seed, device=str(device))
    metrics = {"model": name, "data": s.data, "seed": seed, "device": str(device), **notes}
    if s.train_missing:
        metrics["training_entries_hidden"] = f"{s.train_missing:.0%} at random (MCAR)"
    if s.strategy is not None and not trained_by_sgd(model):
        raise ValueError(f"--strategy trains the models trained by SGD; {name} is not one")
    out.mkdir(parents=True, exist_ok=True)  # everything it needs is read and checked by now
    if trained_by_sgd(model):
        with stage(f"training {name} ({s.epochs} epochs)"):
            metrics.update(_fit_sgd(model, split.train, s, out, seed, progress, config))
        if metrics.pop("rank", 0) != 0:  # a further process of a Lightning run: rank 0 reports
            return metrics
    elif model.trained_by == "adversarial":
        metrics.update(_fit_gan(model, split.train, s, out, seed, progress))
    elif s.objective is not None:
        raise ValueError(
            f"{name} is fitted in closed form or by EM when built; --objective applies to "
            "the models trained by SGD (vae, shapevae, vsl)"
        )
    save(model, out / MODEL_FILE, config)
    test = split.test[: s.ll_rows]
    xt, mt = model_rows(model, test)
    torch.manual_seed(seed)
    with stage(f"test log-likelihood of {len(xt)} rows"):
        existence = getattr(test, "existence", None)
        # an image encoder proposes from each test shape's first view
        context = {"image": test.images[:, 0].to(xt)} if _reads_images(model) else None
        ll, exact = log_likelihood_per_dim(
            model, xt, mt, existence=existence, num_samples=s.iwae_samples, context=context
        )
    metrics.update(
        parameters=sum(p.numel() for p in model.parameters()),
        **scored_mean(ll),
        log_likelihood="exact" if exact else f"IWAE bound, K={s.iwae_samples}",
        seconds=time.perf_counter() - start,
    )
    rows = [
        (k.replace("_", " "), f"{v:.6g}" if isinstance(v, float) else str(v))
        for k, v in metrics.items()
    ]
    table = markdown_table(("what", "value"), rows, title=f"{name} fitted to {s.data}")
    write_results(out, metrics, table)
    return metrics
