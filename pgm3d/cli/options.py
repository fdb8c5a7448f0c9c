"""Options shared by the ``pgm3d`` subcommands, and config files merged under the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from pgm3d.config import read_config

__all__ = [
    "CONFIG_EXCLUDE",
    "add_checks",
    "add_common",
    "add_data",
    "apply_config",
    "effective_config",
    "pick",
    "walk_actions",
]

#: namespace entries that are plumbing, not configuration
CONFIG_EXCLUDE = frozenset({"func", "_leaf", "config", "command", "experiment"})


def add_common(p: argparse.ArgumentParser, default_out: str, *, quick: bool = False) -> None:
    """``--out --seed --device --quiet --config --overwrite`` (and ``--quick``)."""
    g = p.add_argument_group("common options")
    g.add_argument(
        "--out", type=Path, default=Path(default_out), help="output folder (%(default)s)"
    )
    g.add_argument("--seed", type=int, default=0, help="random seed (%(default)s)")
    g.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 (%(default)s)")
    g.add_argument("--quiet", action="store_true", help="no progress bars or tables on stdout")
    g.add_argument(
        "--config", type=Path, default=None, help="YAML/TOML/JSON file of options (flags win)"
    )
    g.add_argument(
        "--overwrite", action="store_true", help="reuse an --out folder that holds another run"
    )
    if quick:
        g.add_argument("--quick", action="store_true", help="small settings (about a minute)")
    p.set_defaults(_leaf=p)


def add_data(p: argparse.ArgumentParser, *, default: str | None = None, from_run=False) -> None:
    """Where the data come from; see :func:`pgm3d.data.datasets.open_data`."""
    from pgm3d.data.datasets import data_names

    g = p.add_argument_group("data")
    origin = "the run's" if from_run else (default or "chairs")
    g.add_argument(
        "--data",
        default=default,
        help=f"{', '.join(data_names())}, a shapes .npz / .npy / .csv file, or a voxel file or "
        f"ModelNet-style folder ({origin})",
    )
    g.add_argument("--data-path", type=Path, default=None, help="frey_rawface.mat location")
    g.add_argument("--n-train", type=int, default=None, help="shapes drawn for training (1000)")
    g.add_argument("--n-test", type=int, default=None, help="shapes drawn for testing (250)")
    g.add_argument("--points-per-part", type=int, default=None, help="(16)")
    g.add_argument("--test-fraction", type=float, default=None, help="held-out rows (0.2)")
    g.add_argument("--resolution", type=int, default=None, help="voxel grid size (32)")


def _checked(name: str, check):
    """An argparse ``type`` that parses a command-line string (or takes a config file's value
    as it is) and checks it with ``check``; a bad value becomes argparse's usage error."""

    def convert(value):
        try:
            return check(name, value)
        except (TypeError, ValueError) as e:
            # argparse names the option already: "argument --epochs: must be >= 1, got 0"
            raise argparse.ArgumentTypeError(str(e).removeprefix(f"{name} ")) from None

    convert.__name__ = name
    return convert


def _setting(name: str, value):
    from pgm3d.experiments._settings import SETTINGS, check_setting

    if isinstance(value, str):
        kind = SETTINGS[name].kind
        try:
            value = kind(value.strip())
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise ValueError(f"{name} must be {what}, got {value!r}") from None
    return check_setting(name, value)


def _seed(name: str, value):
    from pgm3d._validation import check_seed

    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {value!r}") from None
    return check_seed(value, name)


def _device(name: str, value):
    from pgm3d._validation import check_device

    if not isinstance(value, str):
        raise TypeError(f"{name} must be a device name such as cpu or cuda, got {value!r}")
    check_device(value, name)
    return value


def walk_actions(parser: argparse.ArgumentParser):
    """Every option of ``parser`` and of its subcommands, recursively."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases share a parser
                yield from walk_actions(sub)
        else:
            yield action


def add_checks(parser: argparse.ArgumentParser) -> None:
    """Give every numeric option of every subcommand the check of its setting
    (:data:`pgm3d.experiments._settings.SETTINGS`), and ``--seed`` and ``--device`` theirs, so
    ``-n 0``, ``--kl-weight nan``, ``--device foo`` or ``--seed 2**70`` are usage errors."""
    from pgm3d.experiments._settings import SETTINGS

    for action in walk_actions(parser):
        if action.dest in SETTINGS:
            action.type = _checked(action.dest, _setting)
        elif action.dest == "seed":
            action.type = _checked("seed", _seed)
        elif action.dest == "device" and action.option_strings:
            action.type = _checked("device", _device)


def _section(args) -> str:
    return f"experiment.{args.experiment}" if args.command == "experiment" else args.command


def apply_config(parser: argparse.ArgumentParser, args, argv: list[str]):
    """Re-parse ``argv`` with the options of ``args.config`` as defaults (the command line
    wins); a config's unknown option names the valid ones."""
    leaf = args._leaf
    config = read_config(args.config, _section(args))
    for key in ("command", "experiment"):
        config.pop(key, None)
    actions = {a.dest: a for a in leaf._actions if a.dest not in ("help", "config", "_leaf")}
    unknown = sorted(set(config) - set(actions))
    if unknown:
        raise ValueError(
            f"{args.config}: unknown options {unknown} for `pgm3d {_section(args)}`; "
            f"it takes: {', '.join(sorted(actions))}"
        )
    for key, value in config.items():
        try:
            config[key] = _config_value(actions[key], value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as e:
            raise ValueError(f"{args.config}: {key} = {value!r}: {e}") from None
    leaf.set_defaults(**config)
    args = parser.parse_args(argv)
    return args


def _config_value(action: argparse.Action, value):
    """A config file's value for ``action``, checked as the command line would check it."""
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if not isinstance(value, bool):
            raise TypeError(f"must be true or false, got {type(value).__name__}")
        return value
    listed = action.nargs in ("+", "*")
    if listed and not isinstance(value, list):
        value = [value]
    if value is None:
        return value
    for v in value if listed else [value]:
        if action.type in (None, Path) and not isinstance(v, str):
            raise TypeError(f"must be a string, got {type(v).__name__}")
        if action.choices is not None and v not in action.choices:
            raise ValueError(f"choose one of: {', '.join(map(str, action.choices))}")
    convert = action.type or (lambda v: v)
    return [convert(v) for v in value] if listed else convert(value)


def effective_config(args) -> dict:
    """The run's configuration: the command and every option's final value."""
    config = {"command": _section(args).replace(".", " ")}
    config.update({k: v for k, v in vars(args).items() if k not in CONFIG_EXCLUDE})
    return config


def pick(args, defaults: dict) -> dict:
    """The options of ``args`` that are settings in ``defaults`` (None = the default)."""
    return {k: getattr(args, k) for k in defaults if hasattr(args, k)}
