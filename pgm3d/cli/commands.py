"""What each ``pgm3d`` subcommand does with its parsed options."""

from __future__ import annotations

from pathlib import Path

from pgm3d.cli.options import effective_config, pick
from pgm3d.config import plain, run_folder

__all__ = [
    "bench",
    "classify",
    "complete",
    "demo",
    "evaluate",
    "fit",
    "missing_fa",
    "mvae",
    "report",
    "sample",
    "shapes",
]


def _progress(args):
    return False if args.quiet else None


def _claim(args, **claim):
    """The ``--out`` folder for the length of the run (:func:`pgm3d.config.run_folder`)."""
    return run_folder(args.out, effective_config(args), overwrite=args.overwrite, **claim)


def _done(args, out: Path, seconds: float | None) -> int:
    if not args.quiet:
        if (out / "table.md").is_file():
            print((out / "table.md").read_text())
        print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}/")
        if seconds is not None:
            print(f"({seconds:.1f} s)")
    return 0


def fit(args) -> int:
    from pgm3d.experiments.workflows import FIT_DEFAULTS, run_fit
    from pgm3d.saving import CHECKPOINT_FILE

    settings = pick(args, FIT_DEFAULTS)
    settings["log"] = None if args.log == "none" else args.log
    with _claim(args, resume=args.resume, checkpoint=CHECKPOINT_FILE) as out:
        metrics = run_fit(
            out,
            seed=args.seed,
            device=args.device,
            resume=args.resume,
            trust=args.trust_file,
            progress=_progress(args),
            summary=not args.quiet,
            config=plain(effective_config(args)),
            **settings,
        )
    return _done(args, out, metrics["seconds"])


def _inference(args, run) -> int:
    from pgm3d.experiments.workflows import COMPLETE_DEFAULTS

    settings = pick(args, COMPLETE_DEFAULTS)
    with _claim(args) as out:
        metrics = run(
            out,
            args.run,
            seed=args.seed,
            device=args.device,
            trust=args.trust_file,
            progress=_progress(args),
            **settings,
        )
    return _done(args, out, metrics.get("seconds"))


def complete(args) -> int:
    from pgm3d.experiments.workflows import run_complete

    return _inference(args, run_complete)


def evaluate(args) -> int:
    from pgm3d.experiments.workflows import run_evaluate

    return _inference(args, run_evaluate)


def sample(args) -> int:
    from pgm3d.experiments.workflows import run_sample

    with _claim(args) as out:
        run_sample(
            out,
            args.run,
            seed=args.seed,
            device=args.device,
            trust=args.trust_file,
            num=args.num,
            mean=not args.noise,
        )
    return _done(args, out, None)


def bench(args) -> int:
    from pgm3d.experiments.workflows import BENCH_DEFAULTS, run_bench

    with _claim(args) as out:
        metrics = run_bench(
            out,
            seed=args.seed,
            device=args.device,
            progress=_progress(args),
            quick=args.quick,
            **pick(args, BENCH_DEFAULTS),
        )
    return _done(args, out, None) if metrics else 1


def demo(args) -> int:
    from pgm3d.experiments.demo import run_demo

    with _claim(args) as out:
        metrics = run_demo(
            out, seed=args.seed, device=args.device, quick=args.quick, progress=_progress(args)
        )
    if not args.quiet:
        print(Path(metrics["summary_file"]).read_text())
        print(f"open {out / 'report.html'} in a browser ({metrics['seconds']:.0f} s in all)")
    return 0


def report(args) -> int:
    from pgm3d.viz.report import build_report

    path = build_report(args.folder, title=args.title)
    if not args.quiet:
        print(f"wrote {path}")
    return 0


def missing_fa(args) -> int:
    from pgm3d.experiments import run_missing_fa

    with _claim(args) as out:
        metrics = run_missing_fa(
            args.dataset,
            args.pattern,
            out,
            seed=args.seed,
            repeats=args.repeats,
            device=args.device,
            quick=args.quick,
            data_path=args.data_path,
            masks_per_row=args.masks_per_row,
            plus_masks=args.plus_masks,
            progress=_progress(args),
        )
    _done(args, out, metrics["seconds"])
    if not args.quiet:
        differ = [k for k, ok in metrics["orderings"].items() if not ok]
        print(
            "the thesis's test-set rankings (Frey faces, Table 4.2): "
            + ("all hold" if not differ else "differ here in " + "; ".join(differ))
        )
    return 0


def shapes(args) -> int:
    from pgm3d.experiments import run_shapes

    overrides = {
        "latent_dims": tuple(args.latent_dims) if args.latent_dims else None,
        "epochs": args.epochs,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "points_per_part": args.points_per_part,
        "lr": args.lr,
        "kl_weight": args.kl_weight,
        "iwae_samples": args.iwae_samples,
        "completion_shapes": args.completion_shapes,
    }
    return _experiment(args, run_shapes, overrides, args.family)


def _experiment(args, run, settings: dict, *positional) -> int:
    """Claim ``--out`` and run an experiment with the common options and ``settings``."""
    with _claim(args) as out:
        metrics = run(
            *positional,
            out,
            seed=args.seed,
            device=args.device,
            quick=args.quick,
            progress=_progress(args),
            **settings,
        )
    return _done(args, out, metrics["seconds"])


def autoguides(args) -> int:
    from pgm3d.experiments.autoguides import run_autoguides

    settings = {
        "families": None if args.families is None else tuple(args.families),
        "epochs": args.epochs,
        "vae_epochs": args.vae_epochs,
        "gap_samples": args.gap_samples,
    }
    return _experiment(
        args, run_autoguides, {**settings, "data_path": args.data_path}, args.dataset
    )


def classify(args) -> int:
    from pgm3d.experiments import run_classify
    from pgm3d.experiments.classify import FULL

    return _experiment(args, run_classify, pick(args, FULL), args.model, args.data)


def mvae(args) -> int:
    from pgm3d.experiments import run_mvae
    from pgm3d.experiments.mvae import FULL

    return _experiment(args, run_mvae, pick(args, FULL))
