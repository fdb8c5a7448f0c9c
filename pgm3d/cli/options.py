"""Options every ``pgm3d`` run takes, and config files merged under the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from pgm3d.config import read_config

__all__ = ["add_common", "apply_config", "section", "walk_actions"]


def _usage_error(name: str, parse):
    """An argparse ``type`` from ``parse``: its TypeError or ValueError becomes argparse's
    usage error, which names the option already ("argument --seed: must be >= 0, got -1")."""

    def convert(value):
        try:
            return parse(value)
        except (TypeError, ValueError) as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix(f"{name} ")) from None

    convert.__name__ = name
    return convert


def _seed(value) -> int:
    from pgm3d._validation import check_seed

    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"seed must be an integer, got {value!r}") from None
    return check_seed(value)


def _device(value) -> str:
    from pgm3d._validation import check_device

    if not isinstance(value, str):
        raise TypeError(f"device must be a device name such as cpu or cuda, got {value!r}")
    check_device(value)
    return value


def add_common(p: argparse.ArgumentParser, default_out: str, *, quick: bool = False) -> None:
    """``--out --seed --device --quiet --config --overwrite`` (and ``--quick``, for a command
    whose settings have a quick preset)."""
    g = p.add_argument_group("common options")
    g.add_argument(
        "--out", type=Path, default=Path(default_out), help="output folder (%(default)s)"
    )
    g.add_argument(
        "--seed", type=_usage_error("seed", _seed), default=0, help="random seed (%(default)s)"
    )
    g.add_argument(
        "--device",
        type=_usage_error("device", _device),
        default="cpu",
        help="torch device: cpu, cuda, cuda:1 (%(default)s)",
    )
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


def walk_actions(parser: argparse.ArgumentParser):
    """Every option of ``parser`` and of its subcommands, recursively."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases share a parser
                yield from walk_actions(sub)
        else:
            yield action


def section(args) -> str:
    """The command's name in a config file: ``fit``, ``experiment.shapes``."""
    return f"experiment.{args.experiment}" if args.command == "experiment" else args.command


def apply_config(parser: argparse.ArgumentParser, args, argv: list[str]):
    """Re-parse ``argv`` with the options of ``args.config`` as defaults (the command line
    wins), each checked by its option's own type; a config's unknown option names the valid
    ones."""
    leaf = args._leaf
    config = read_config(args.config, section(args))
    for key in ("command", "experiment"):
        config.pop(key, None)
    actions = {a.dest: a for a in leaf._actions if a.dest not in ("help", "config", "_leaf")}
    unknown = sorted(set(config) - set(actions))
    if unknown:
        raise ValueError(
            f"{args.config}: unknown options {unknown} for `pgm3d {section(args)}`; "
            f"it takes: {', '.join(sorted(actions))}"
        )
    for key, value in config.items():
        try:
            config[key] = _config_value(actions[key], value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as e:
            raise ValueError(f"{args.config}: {key} = {value!r}: {e}") from None
    leaf.set_defaults(**config)
    return parser.parse_args(argv)


def _config_value(action: argparse.Action, value):
    """A config file's value for ``action``, checked as the command line would check it."""
    flags = argparse._StoreTrueAction | argparse._StoreFalseAction | argparse.BooleanOptionalAction
    if isinstance(action, flags):
        if not isinstance(value, bool):
            raise TypeError(f"must be true or false, got {type(value).__name__}")
        return value
    listed = action.nargs in ("+", "*")
    if listed and not isinstance(value, list):
        value = [value]
    if value is None:
        return value
    for v in value if listed else [value]:
        if action.type in (None, str, Path) and not isinstance(v, str):
            raise TypeError(f"must be a string, got {type(v).__name__}")
        if action.choices is not None and v not in action.choices:
            raise ValueError(f"choose one of: {', '.join(map(str, action.choices))}")
    convert = action.type or (lambda v: v)
    return [convert(v) for v in value] if listed else convert(value)
