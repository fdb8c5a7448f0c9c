"""The ``pgm3d`` command: one entry point, a subcommand per job.

``pgm3d demo`` runs the whole idea end to end; ``pgm3d fit|complete|evaluate|sample`` run its
steps on your data and models; ``pgm3d experiment NAME`` reproduces a paper's experiment;
``pgm3d bench`` measures throughput; ``pgm3d report DIR`` (re)builds a run's HTML report.
Every command that writes results takes ``--out``, ``--seed``, ``--device``, ``--quiet``,
``--config FILE`` (YAML/TOML/JSON; the command line wins) and ``--overwrite``, and saves its
effective config as ``config.toml`` beside its outputs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from pgm3d import __version__
from pgm3d.cli import commands
from pgm3d.cli.options import (
    CONFIG_EXCLUDE,
    add_checks,
    add_common,
    add_data,
    apply_config,
    walk_actions,
)
from pgm3d.inference.training import TrainingError
from pgm3d.registry import did_you_mean

__all__ = ["main"]


def _experiments(sub) -> None:
    from pgm3d.data import FAMILIES

    experiment = sub.add_parser(
        "experiment",
        help="reproduce an experiment of the papers",
        description="Reproduce an experiment; `pgm3d experiment NAME --help` for its options.",
    )
    names = experiment.add_subparsers(dest="experiment", metavar="NAME", required=True)
    mfa = names.add_parser(
        "missing-fa",
        help="thesis Tables 4.1-4.2: PPCA imputation with mean/FCA/SCA/DE/exact inference",
        description="Impute missing pixels with PPCA and compare inference methods "
        "(thesis ch. 4, Tables 4.1 and 4.2).",
    )
    mfa.add_argument("--dataset", choices=["digits", "frey"], default="digits")
    mfa.add_argument("--data-path", type=Path, default=None, help="frey_rawface.mat location")
    mfa.add_argument("--pattern", choices=["random", "quarters", "both"], default="both")
    mfa.add_argument("--repeats", type=int, default=1, help="seeds to average over")
    mfa.add_argument(
        "--masks-per-row", type=int, default=1, help="DE training masks per image (thesis: 1)"
    )
    mfa.add_argument(
        "--plus-masks", type=int, default=None, help="DE+ training masks per image (16; 0: skip)"
    )
    add_common(mfa, "runs/missing-fa", quick=True)
    mfa.set_defaults(func=commands.missing_fa)

    shp = names.add_parser(
        "shapes",
        help="thesis ch. 3: ShapeVAE vs ShapeFA vs per-pattern Gaussian on part-segmented shapes",
        description="Train ShapeVAE, ShapeFA and the per-pattern diagonal Gaussian on procedural "
        "shapes and compare completion, test log-likelihood, normals from points, symmetry and "
        "latent activity (thesis §3.5, Tables 3.1 and 3.2).",
    )
    shp.add_argument("--family", choices=FAMILIES.names(), default="chairs")
    shp.add_argument("--latent-dims", type=int, nargs="+", default=None, help="(default 8 64)")
    shp.add_argument("--epochs", type=int, default=None, help="ShapeVAE epochs (thesis: 500)")
    shp.add_argument("--n-train", type=int, default=None, help="training shapes")
    shp.add_argument("--n-test", type=int, default=None, help="test shapes")
    shp.add_argument("--points-per-part", type=int, default=None)
    shp.add_argument("--lr", type=float, default=None, help="Adam learning rate (thesis: 1e-4)")
    shp.add_argument("--kl-weight", type=float, default=None, help="KL weight alpha (thesis: 100)")
    shp.add_argument("--iwae-samples", type=int, default=None, help="K of the IWAE bound")
    shp.add_argument("--completion-shapes", type=int, default=None, help="(thesis: 1000)")
    add_common(shp, "runs/shapes", quick=True)
    shp.set_defaults(func=commands.shapes)

    cls = names.add_parser(
        "classify",
        help="VSL / 3D-GAN features + SVM: unsupervised shape classification",
        description="Train VSL or 3D-GAN on voxel grids without labels, classify the test "
        "grids with an SVM on the learned features, and compare with a supervised 3D CNN "
        "(Liu et al. 2017; Wu et al. 2016).",
    )
    cls.add_argument("--model", choices=["vsl", "gan"], default="vsl")
    cls.add_argument(
        "--data",
        default="voxel-classes",
        help="voxel-classes (procedural, 10 classes), a voxel file (.mat/.npy/.npz), or a "
        "ModelNet-style folder root/<class>/{train,test}/ (%(default)s)",
    )
    cls.add_argument("--n-per-class", type=int, default=None, help="procedural grids per class")
    cls.add_argument("--resolution", type=int, default=None, help="VSL 30|32, GAN 32|64")
    cls.add_argument("--epochs", type=int, default=None)
    cls.add_argument("--batch-size", type=int, default=None)
    cls.add_argument("--lr", type=float, default=None, help="VSL's Adam rate")
    cls.add_argument("--kl-beta", type=float, default=None, help="VSL's beta (seed: 1e-3)")
    cls.add_argument("--gan-width", type=float, default=None, help="GAN channel multiplier")
    cls.add_argument("--lr-g", type=float, default=None, help="GAN generator rate (0.0025)")
    cls.add_argument("--lr-d", type=float, default=None, help="GAN D rate (1e-4; paper 1e-5)")
    cls.add_argument("--cnn-epochs", type=int, default=None, help="supervised VoxNet epochs")
    add_common(cls, "runs/classify", quick=True)
    cls.set_defaults(func=commands.classify)

    ag = names.add_parser(
        "autoguides",
        help="autoguide families vs FCA/SCA/DE/exact under missing data; a VAE's IWAE gap",
        description="Train amortised, mask-aware autoguides on random masks and measure "
        "KL(q || exact posterior) of PPCA on test rows under random and quarter masks, beside "
        "the thesis's FCA, SCA and denoising encoder (ch. 4); and the IWAE gap of a VAE on "
        "digits with each guide family.",
    )
    ag.add_argument("--dataset", choices=["digits", "frey"], default="digits")
    ag.add_argument("--data-path", type=Path, default=None, help="frey_rawface.mat location")
    ag.add_argument("--families", nargs="+", default=None, help="autoguide families to train")
    ag.add_argument("--epochs", type=int, default=None, help="autoguide training epochs (300)")
    ag.add_argument("--vae-epochs", type=int, default=None, help="VAE training epochs (60)")
    ag.add_argument("--gap-samples", type=int, default=None, help="K of the IWAE bound (5000)")
    add_common(ag, "runs/autoguides", quick=True)
    ag.set_defaults(func=commands.autoguides)

    mv = names.add_parser(
        "mvae",
        help="thesis ch. 5: multi-entity VAE vs VAE on multi-sprite scenes, object counting",
        description="Train the multi-entity VAE and a standard VAE with the same networks on "
        "procedural multi-sprite scenes; write training curves, reconstructions, samples, "
        "entity exchange, sequential decoding, traversals, KL maps and unsupervised object "
        "counting by a KL threshold (Nash et al. 2017).",
    )
    mv.add_argument("--max-sprites", type=int, default=None, help="3 or 8 (3)")
    mv.add_argument("--n-train", type=int, default=None, help="training scenes (16000)")
    mv.add_argument("--n-test", type=int, default=None, help="fresh test scenes (1000)")
    mv.add_argument("--n-count", type=int, default=None, help="scenes to pick the threshold")
    mv.add_argument("--num-objects", type=int, default=None, help="K (5; max-sprites + 2 above 3)")
    mv.add_argument("--object-dim", type=int, default=None, help="size of each object (12)")
    mv.add_argument("--pooling", choices=["max", "sum"], default=None)
    mv.add_argument("--width", type=int, default=None, help="encoder channels (32)")
    mv.add_argument("--channels", type=int, default=None, help="decoder channels (32)")
    mv.add_argument("--epochs", type=int, default=None, help="(12)")
    mv.add_argument("--batch-size", type=int, default=None, help="(32)")
    mv.add_argument("--lr", type=float, default=None, help="Adam learning rate (1e-3)")
    mv.add_argument("--lr-decay", type=float, default=None, help="per-epoch factor (0.9)")
    mv.add_argument("--iwae-samples", type=int, default=None, help="K of the test IWAE (20)")
    add_common(mv, "runs/mvae", quick=True)
    mv.set_defaults(func=commands.mvae)


def _fit(sub) -> None:
    from pgm3d.autoguide import FAMILIES as GUIDE_FAMILIES
    from pgm3d.inference import OBJECTIVES
    from pgm3d.models import MODELS

    p = sub.add_parser(
        "fit",
        help="fit a model to data, with checkpoints and --resume",
        description="Build a model by registry name, fit it (SGD with any objective for the "
        "VAEs, closed form or EM for the linear models), save model.pt (pgm3d.load) and "
        "measure its test log-likelihood.",
    )
    p.add_argument(
        "--model",
        default=None,
        help=f"one of {', '.join(MODELS.names())} (default: the one for the data: shapevae for "
        "shapes, vae for rows, vsl for voxels, mvae for scenes)",
    )
    add_data(p)
    p.add_argument("--latent-dim", type=int, default=None, help="size of z (8; VSL z0 20; GAN 200)")
    p.add_argument("--hidden", type=int, default=None, help="hidden width (model default)")
    p.add_argument("--part-dim", type=int, default=None, help="ShapeVAE u_p / ShapeFA factors")
    p.add_argument("--likelihood", choices=["gaussian", "bernoulli"], default=None)
    p.add_argument(
        "--objective", default=None, help=f"one of {', '.join(OBJECTIVES.names())} (elbo)"
    )
    p.add_argument(
        "--guide",
        choices=["model", *(f"auto-{f}" for f in GUIDE_FAMILIES.names())],
        default=None,
        help="the model's own guide (model), or an amortised mask-aware autoguide of a family "
        "(pgm3d.autoguide) in its place",
    )
    p.add_argument("--epochs", type=int, default=None, help="(default 50)")
    p.add_argument("--batch-size", type=int, default=None, help="(default 100)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (1e-3)")
    p.add_argument(
        "--kl-weight", type=float, default=None, help="KL weight (1; VSL: the seed's beta 1e-3)"
    )
    p.add_argument("--kl-warmup", type=int, default=None, help="steps of linear KL warm-up (0)")
    p.add_argument("--num-particles", type=int, default=None, help="samples per data point (1)")
    p.add_argument("--iwae-samples", type=int, default=None, help="K of the test IWAE (500)")
    p.add_argument("--ll-rows", type=int, default=None, help="test rows for the likelihood")
    p.add_argument(
        "--checkpoint-every", type=int, default=None, help="steps between checkpoints (100)"
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    _trust_file(p, "a checkpoint")
    p.add_argument("--log", choices=["csv", "tensorboard", "none"], default="csv")
    add_common(p, "runs/fit")
    p.set_defaults(func=commands.fit)


def _trust_file(p, what: str) -> None:
    p.add_argument(
        "--trust-file",
        action="store_true",
        help=f"also read {what} written by pgm3d 0.1, a pickle: reading it can run any code "
        "it holds, so only for files you made or trust",
    )


def _inference_options(p, method_help: str) -> None:
    from pgm3d.data.masks import DROPS

    p.add_argument("--run", required=True, help="a model file or a `pgm3d fit` folder")
    _trust_file(p, "a model file")
    add_data(p, from_run=True)
    p.add_argument("--methods", nargs="+", default=None, help=method_help)
    p.add_argument(
        "--drop",
        choices=list(DROPS),
        default=None,
        help="what to hide: " + "; ".join(f"{k}, {v}" for k, v in DROPS.items()),
    )
    p.add_argument("--p-missing", type=float, default=None, help="parts 0.25, entries 0.5")
    p.add_argument("--rows", type=int, default=None, help="test rows (100)")
    p.add_argument("--chains", type=int, default=None, help="sampler chains (4)")
    p.add_argument("--warmup", type=int, default=None, help="sampler warm-up steps (100)")
    p.add_argument("--thin", type=int, default=None, help="keep every n-th draw (10)")
    p.add_argument("--num-samples", type=int, default=None, help="draws per chain (25)")
    p.add_argument("--num-proposals", type=int, default=None, help="importance proposals")
    p.add_argument("--iwae-samples", type=int, default=None, help="K of the test IWAE (500)")


def _steps(sub) -> None:
    from pgm3d.inference import COMPLETION_METHODS

    names = ", ".join(COMPLETION_METHODS.names())
    p = sub.add_parser(
        "complete",
        help="fill in hidden parts or entries with interchangeable back ends",
        description="Hide parts (shapes) or entries (rows) of test data and complete them with "
        "each back end; imputation error, timings, a figure.",
    )
    _inference_options(p, f"back ends ({names}); default: all that apply")
    add_common(p, "runs/complete")
    p.set_defaults(func=commands.complete)

    p = sub.add_parser(
        "evaluate",
        help="test log-likelihood and the posterior comparison table",
        description="Test log-likelihood, then the posterior comparison of the inference layer "
        "(imputation error, distance to the exact posterior, PSIS k-hat, R-hat, ESS).",
    )
    _inference_options(p, f"back ends to compare ({names}); default: all that apply")
    add_common(p, "runs/evaluate")
    p.set_defaults(func=commands.evaluate)

    p = sub.add_parser(
        "sample",
        help="draw samples from a saved model",
        description="Draw samples from a saved model (a model file or a `pgm3d fit` folder): "
        "decoder means by default, --noise to add observation noise; writes samples.npz, a "
        "figure for shapes, voxels and images, and metrics.json.",
    )
    p.add_argument("--run", required=True, help="a model file or a `pgm3d fit` folder")
    _trust_file(p, "a model file")
    p.add_argument("-n", "--num", type=int, default=16, help="samples (16)")
    p.add_argument(
        "--noise", action="store_true", help="add observation noise (default: decoder means)"
    )
    add_common(p, "runs/sample")
    p.set_defaults(func=commands.sample)


def _others(sub) -> None:
    from pgm3d.models import MODELS

    p = sub.add_parser(
        "demo",
        help="the whole idea end to end on embedded data, with an HTML report",
        description="Fit ShapeFA and ShapeVAE on procedural chairs, estimate test "
        "log-likelihoods, complete dropped parts with six back ends, compare posteriors, run "
        "the missing-data FA experiment on digits, and write report.html (about 5 minutes on "
        "2 CPU cores; --quick about one).",
    )
    add_common(p, "runs/demo", quick=True)
    p.set_defaults(func=commands.demo)

    p = sub.add_parser(
        "bench",
        help="training and completion throughput on this device",
        description="Steps per second of every objective and rows per second of every "
        "completion back end, for one model.",
    )
    p.add_argument("--model", default="vae", help=f"one of {', '.join(MODELS.names())}")
    add_data(p, default="digits")
    p.add_argument("--latent-dim", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="training steps timed (50)")
    p.add_argument("--rows", type=int, default=None, help="rows completed (100)")
    p.add_argument("--num-particles", type=int, default=None, help="(8)")
    add_common(p, "runs/bench", quick=True)
    p.set_defaults(func=commands.bench)

    p = sub.add_parser(
        "report",
        help="(re)build the self-contained report.html of a run folder",
        description="Collect a run folder's tables, headline numbers and figures into "
        "report.html (images embedded).",
    )
    p.add_argument("folder", type=Path, help="a run folder (demo, experiment, fit ...)")
    p.add_argument("--title", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=commands.report, device="cpu")


class _Parser(argparse.ArgumentParser):
    """argparse with no abbreviations (``--epoch 3`` is not taken for ``--epochs``) and a
    "did you mean" for a mistyped option, subcommand or choice."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str):
        super().error(message + _suggestion(self, message))


def _suggestion(parser: argparse.ArgumentParser, message: str) -> str:
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        options = re.findall(r"'([^']*)'", choice.group(2))
        return did_you_mean(choice.group(1), options)
    unknown = re.search(r"unrecognized arguments: (.*)", message)
    if unknown:
        flags = sorted({s for a in walk_actions(parser) for s in a.option_strings})
        for word in unknown.group(1).split():
            hint = did_you_mean(word, flags) if word.startswith("-") else ""
            if hint:
                return hint
    return ""


def build_parser() -> argparse.ArgumentParser:
    """The ``pgm3d`` argument parser."""
    parser = _Parser(
        prog="pgm3d",
        description="Deep latent-variable models of 3D shapes and images on Pyro.",
    )
    parser.add_argument("--version", action="version", version=f"pgm3d {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _others(sub)
    _fit(sub)
    _steps(sub)
    _experiments(sub)
    add_checks(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pgm3d`` command; returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    try:
        if getattr(args, "config", None) is not None:
            args = apply_config(parser, args, argv)
        return args.func(args)
    except KeyboardInterrupt:
        out = getattr(args, "out", None)
        print(
            f"\npgm3d: interrupted. Files are written atomically, so the last checkpoint in {out}"
            " is intact; rerun the same command with --resume to continue.",
            file=sys.stderr,
        )
        return 130
    except (OSError, ValueError, TypeError, ImportError, TrainingError) as e:
        # expected failures (bad input, a refused file or folder, a diverged run): one line
        # that says what to do; anything else is a bug and keeps its traceback
        print(f"pgm3d: error: {e}", file=sys.stderr)
        return 2


__all__ += ["CONFIG_EXCLUDE", "build_parser"]

if __name__ == "__main__":
    sys.exit(main())
