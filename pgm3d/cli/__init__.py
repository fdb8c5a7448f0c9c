"""The ``pgm3d`` command: one entry point, a subcommand per job, generated from the registries.

``pgm3d demo`` runs the whole idea end to end; ``pgm3d fit|complete|evaluate|sample|bench`` run
the tasks of :data:`pgm3d.tasks.TASKS` on your data and models; ``pgm3d experiment NAME``
reproduces an experiment of :data:`pgm3d.experiments.EXPERIMENTS`; ``pgm3d report DIR``
(re)builds a run's HTML report. Each command's options are its settings dataclass's fields
(:mod:`pgm3d.cli.generate`), plus ``--out``, ``--seed``, ``--device``, ``--quiet``, ``--config
FILE`` (YAML/TOML/JSON; the command line wins) and ``--overwrite``; every run saves its
effective config as ``config.toml`` beside its outputs.

The path of an option, ``pgm3d fit --epochs 5``: :func:`build_parser` made ``--epochs`` from
``FitSettings.epochs`` (type, check, help, default); :func:`main` parses it, and
:func:`_run` turns the namespace into ``FitSettings`` (:func:`~pgm3d.cli.generate.
settings_from_args`), claims ``--out`` and calls :func:`pgm3d.tasks.fit.run_fit`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from pgm3d import __version__
from pgm3d._log import log_to_stderr, stage
from pgm3d.cli.generate import add_settings, settings_from_args
from pgm3d.cli.options import add_common, apply_config, section, walk_actions
from pgm3d.config import run_config, run_folder
from pgm3d.inference.training import TrainingError
from pgm3d.registry import Registry, did_you_mean

__all__ = ["build_parser", "main"]


def _add(sub, registry: Registry, name: str, out: str) -> None:
    """The subcommand ``name`` of ``registry``: its settings' options and the common ones."""
    info = registry.info(name)
    p = sub.add_parser(name, help=info["help"], description=info["description"])
    cls = info["settings"]
    add_settings(p, cls)
    add_common(p, out, quick=bool(cls.QUICK))
    p.set_defaults(_run=(registry, name))


def _report(sub) -> None:
    p = sub.add_parser(
        "report",
        help="(re)build the self-contained report.html of a run folder",
        description="Collect a run folder's tables, headline numbers and figures into "
        "report.html (images embedded).",
    )
    p.add_argument("folder", type=Path, help="a run folder (demo, experiment, fit ...)")
    p.add_argument("--title", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_build_report)


def _build_report(args) -> int:
    from pgm3d.viz.report import build_report

    path = build_report(args.folder, title=args.title)
    if not args.quiet:
        print(f"wrote {path}")
    return 0


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
    """The ``pgm3d`` argument parser, from :data:`~pgm3d.tasks.TASKS` and
    :data:`~pgm3d.experiments.EXPERIMENTS`."""
    from pgm3d.experiments import EXPERIMENTS
    from pgm3d.tasks import TASKS

    parser = _Parser(
        prog="pgm3d",
        description="Deep latent-variable models of 3D shapes and images on Pyro.",
    )
    parser.add_argument("--version", action="version", version=f"pgm3d {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in TASKS:
        _add(sub, TASKS, name, f"runs/{name}")
    _report(sub)
    experiment = sub.add_parser(
        "experiment",
        help="reproduce an experiment of the papers",
        description="Reproduce an experiment; `pgm3d experiment NAME --help` for its options.",
    )
    names = experiment.add_subparsers(dest="experiment", metavar="NAME", required=True)
    for name in EXPERIMENTS:
        _add(names, EXPERIMENTS, name, f"runs/{name}")
    return parser


def _run(args) -> int:
    """Run the task or experiment the command names: settings from the options, the ``--out``
    folder claimed for it (:func:`~pgm3d.config.run_folder`), and a summary on stdout."""
    registry, name = args._run
    info = registry.info(name)
    settings = settings_from_args(info["settings"], args)
    common = {"out": args.out, "seed": args.seed, "device": args.device}
    if hasattr(args, "quick"):
        common["quick"] = args.quick
    config = run_config(section(args).replace(".", " "), settings, **common)
    if _further_process():
        # Lightning's ddp started this command again in another process: it trains its share
        # and keeps quiet; the first process owns --out and writes everything there
        with tempfile.TemporaryDirectory(prefix="pgm3d-rank-") as scratch:
            registry[name](settings, Path(scratch), seed=args.seed, device=args.device,
                           progress=False)  # fmt: skip
        return 0
    claim = {"overwrite": args.overwrite}
    if info.get("checkpoint"):
        claim.update(resume=settings.resume, checkpoint=info["checkpoint"])
    with (
        log_to_stderr(not args.quiet),
        run_folder(args.out, config, **claim) as out,
        stage(f"pgm3d {config['command']}"),
    ):
        metrics = registry[name](
            settings,
            out,
            seed=args.seed,
            device=args.device,
            progress=False if args.quiet else None,
        )
    if not args.quiet:
        _print_summary(out, metrics, info)
    return 0


def _further_process() -> bool:
    """Is this a process of a multi-process run other than the first (a rank set above 0 by
    Lightning's launcher or by ``torchrun``)?"""
    return any(int(os.environ.get(k, "0") or 0) > 0 for k in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def _print_summary(out: Path, metrics: dict, info: dict) -> None:
    if info.get("table", True):
        if (out / "table.md").is_file():
            print((out / "table.md").read_text())
        print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}/")
        if metrics.get("seconds") is not None:
            print(f"({metrics['seconds']:.1f} s)")
    if info.get("summary"):
        print(info["summary"](metrics))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pgm3d`` command; returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    try:
        if getattr(args, "config", None) is not None:
            args = apply_config(parser, args, argv)
        return _run(args) if hasattr(args, "_run") else args.func(args)
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


if __name__ == "__main__":
    sys.exit(main())
